"""The monthly supervision report (月度监管报告) of a jurisdiction, as XLSX and PDF.

``data.build_monthly_report`` gathers the figures once (indicators from ``enterprises.indicators``,
top risks, overdue items, child regions) into plain tables; ``xlsx`` and ``pdf`` only lay them out.
"""
