from enterprises.widgets import FastSelect


def test_fast_select_escapes_values_and_labels_and_marks_selection():
    widget = FastSelect(choices=[("", "全部"), ("1", "<script>alert(1)</script>"), ('2"x', "A & B")])
    html = widget.render("park", "1", attrs={"id": "id_park"})
    assert html.startswith('<select name="park" id="id_park">') or html.startswith('<select id="id_park" name="park">')
    assert '<option value="1" selected>&lt;script&gt;alert(1)&lt;/script&gt;</option>' in html
    assert '<option value="2&quot;x">A &amp; B</option>' in html
    assert "<script>" not in html
    assert html.count(" selected") == 1
