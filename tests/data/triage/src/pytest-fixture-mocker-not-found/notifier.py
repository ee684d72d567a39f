import smtplib


def send_alert(to, subject, body, host="localhost"):
    with smtplib.SMTP(host) as smtp:
        smtp.sendmail("alerts@example.org", [to], f"Subject: {subject}\n\n{body}")
    return True
