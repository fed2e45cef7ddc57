"""Plain-text mail through the configured server (`INTEGRA_SMTP_*`): password-reset links and
the notices of recommendations. Blocking: call it from a job or a worker thread."""

import smtplib
from email.message import EmailMessage

from node.core.settings import Settings

# What a caller catches when a mail does not go (the server down, refused, or timing out).
MailError = (OSError, smtplib.SMTPException)


def send_mail(settings: Settings, to: str, subject: str, body: str) -> None:
    """One plain-text mail through the configured server."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.smtp_from, to, subject
    message.set_content(body)
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
