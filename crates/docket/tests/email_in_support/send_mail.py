"""Sends one real MIME message with Python's smtplib, for Docket's email-in tests.

Usage: python3 send_mail.py PORT < spec.json
spec: {"mail_from", "rcpts": [...], "from", "to", "subject", "text", "html", "charset",
       "attachments": [{"name", "hex", "type"}], "headers": {name: value}, "pad": N}
Builds the message with the email package (text and/or HTML, attachments, the subject
and body in `charset`), then speaks SMTP step by step and prints one JSON line:
{"stage": "mail"|"rcpt"|"data"|"done", "code": N, "message": "...", "rcpt_codes": [...]}.
"""
import base64
import json
import smtplib
import sys
from email.message import EmailMessage
from email.policy import SMTP


def build(spec):
    charset = spec.get("charset") or "utf-8"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = spec["from"]
    msg["To"] = spec.get("to") or ", ".join(spec["rcpts"])
    subject = spec.get("subject", "")
    # The subject in `charset` itself (RFC 2047 B encoding), put in after the email
    # package is done (it would re-encode any header to UTF-8).
    msg["Subject"] = "SUBJECT-PLACEHOLDER" if charset != "utf-8" else subject
    for name, value in (spec.get("headers") or {}).items():
        msg[name] = value
    text, html = spec.get("text"), spec.get("html")
    if text is not None:
        text = text + "x" * spec.get("pad", 0)
        if charset != "utf-8":
            msg.set_content(text.encode(charset), maintype="text", subtype="plain",
                            cte="base64" if charset.lower() == "shift_jis" else "quoted-printable")
            msg.set_param("charset", charset)
        else:
            msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    for a in spec.get("attachments") or []:
        maintype, subtype = a.get("type", "application/octet-stream").split("/", 1)
        msg.add_attachment(bytes.fromhex(a["hex"]), maintype=maintype,
                           subtype=subtype, filename=a["name"])
    data = msg.as_bytes()
    if charset != "utf-8":
        encoded = "=?%s?b?%s?=" % (charset, base64.b64encode(subject.encode(charset)).decode())
        data = data.replace(b"SUBJECT-PLACEHOLDER", encoded.encode(), 1)
    return data


def main():
    port = int(sys.argv[1])
    spec = json.load(sys.stdin)
    data = build(spec)
    out = {"rcpt_codes": []}
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("tests.example")
        code, message = s.mail(spec.get("mail_from", spec["from"]))
        if code != 250:
            out.update(stage="mail", code=code, message=message.decode())
            print(json.dumps(out))
            return
        accepted = 0
        for r in spec["rcpts"]:
            code, message = s.rcpt(r)
            out["rcpt_codes"].append(code)
            out["rcpt_message"] = message.decode()
            accepted += code == 250
        if accepted == 0:
            s.rset()
            out.update(stage="rcpt", code=out["rcpt_codes"][-1], message=out["rcpt_message"])
            print(json.dumps(out))
            return
        code, message = s.data(data)
        out.update(stage="done" if code == 250 else "data", code=code, message=message.decode())
        print(json.dumps(out))


if __name__ == "__main__":
    main()
