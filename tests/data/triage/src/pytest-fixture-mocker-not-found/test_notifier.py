from notifier import send_alert


def test_send_alert_uses_smtp(mocker):
    smtp = mocker.patch("notifier.smtplib.SMTP")
    assert send_alert("ops@example.org", "disk", "90% full")
    smtp.return_value.__enter__.return_value.sendmail.assert_called_once()
