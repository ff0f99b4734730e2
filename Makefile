# Convenience targets; dev.py does the work so a machine without make needs only Python.
.PHONY: demo test lint ci e2e bench

demo:
	python3 dev.py demo

test:
	python3 dev.py test

lint:
	.venv/bin/python -m ruff check . && .venv/bin/python -m ruff format --check .
	.venv/bin/python manage.py check && .venv/bin/python manage.py makemigrations --check --dry-run

ci:
	bash .ci/run

e2e:
	python3 dev.py test -m e2e
