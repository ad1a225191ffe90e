//! The SMTP server side (RFC 5321), just what a receiving endpoint needs: HELO/EHLO, MAIL,
//! RCPT, DATA (dot-unstuffing, `.` end), RSET, NOOP, VRFY (never confirms), HELP, QUIT.
//! ESMTP: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and SIZE. No STARTTLS or AUTH: the
//! receiver sits behind the site's own MX or on a trusted network (docs/email-in.md).
//!
//! Bounded: command lines of `MAX_COMMAND_LINE` bytes, messages of `max_message_bytes`
//! (the rest of a larger one is read and dropped, then refused with 552), recipients per
//! message, commands and errors per connection, and a timeout on every read and write.
//!
//! What to accept is decided by a [`Delivery`]: the sender at MAIL, each recipient at RCPT,
//! the message after DATA. Its refusals are SMTP replies, so a refused recipient or message
//! is a bounce the sending server delivers to its sender.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest command line (RFC 5321 asks for 512; extensions add parameters).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Commands one connection may send.
const MAX_COMMANDS: usize = 1000;
/// Bad commands before the connection is closed.
const MAX_ERRORS: usize = 20;

/// An SMTP reply: a code and one line of text (an enhanced status code first, by convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            text: one_line(&text.into()),
        }
    }

    fn line(&self) -> String {
        format!("{} {}\r\n", self.code, self.text)
    }
}

/// Reply text as one printable ASCII line of bounded length.
fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(450)
        .collect();
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// What the server accepts; see the module doc.
pub trait Delivery: Send + Sync {
    /// At MAIL: the reverse path (`""` for bounces).
    fn check_sender(&self, from: &str) -> impl Future<Output = Result<(), Reply>> + Send;
    /// At RCPT: one forward path.
    fn check_recipient(&self, rcpt: &str) -> impl Future<Output = Result<(), Reply>> + Send;
    /// After DATA: the message (dot-unstuffed, line ends as sent). The reply is final.
    fn deliver(
        &self,
        from: &str,
        rcpts: &[String],
        data: Vec<u8>,
    ) -> impl Future<Output = Reply> + Send;
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub hostname: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub timeout: Duration,
}

/// One line read with a bound.
enum Line {
    Text(Vec<u8>),
    /// Longer than the bound: consumed up to its end and dropped.
    TooLong,
    Eof,
}

/// Reads up to and including the next `\n`, keeping at most `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if !too_long {
            if line.len() + n > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        r.consume(n);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// The path inside `FROM:<…>` / `TO:<…>` and the parameters after it.
fn parse_path<'a>(args: &'a str, prefix: &str) -> Option<(String, &'a str)> {
    let rest = args.get(..prefix.len())?;
    if !rest.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = args[prefix.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        let path = &inner[..end];
        // A source route (`@a,@b:user@host`) is ignored, as RFC 5321 allows.
        let path = path.rsplit(':').next().unwrap_or(path);
        Some((path.trim().to_string(), inner[end + 1..].trim()))
    } else {
        // Lenient: a bare address without brackets.
        let mut parts = rest.splitn(2, ' ');
        let path = parts.next().unwrap_or("").trim();
        (!path.is_empty()).then(|| (path.to_string(), parts.next().unwrap_or("").trim()))
    }
}

/// The `SIZE=` parameter of MAIL.
fn size_param(params: &str) -> Option<u64> {
    params.split_whitespace().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("SIZE").then(|| v.parse().ok())?
    })
}

/// Writes a reply within the timeout.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, t: Duration, text: String) -> std::io::Result<()> {
    let write = async {
        w.write_all(text.as_bytes()).await?;
        w.flush().await
    };
    tokio::time::timeout(t, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

struct Transaction {
    from: String,
    rcpts: Vec<String>,
}

/// Serves one connection to its end.
pub async fn session<S, D>(stream: S, delivery: &D, limits: &Limits) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: Delivery,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    let t = limits.timeout;
    send(
        &mut write,
        t,
        format!("220 {} Docket ESMTP ready\r\n", limits.hostname),
    )
    .await?;
    let mut greeted = false;
    let mut tx: Option<Transaction> = None;
    let mut errors = 0;
    for _ in 0..MAX_COMMANDS {
        let line = match tokio::time::timeout(t, read_line(&mut read, MAX_COMMAND_LINE)).await {
            Err(_) => {
                let _ = send(
                    &mut write,
                    t,
                    "421 4.4.2 Timeout; closing the connection\r\n".into(),
                )
                .await;
                return Ok(());
            }
            Ok(line) => line?,
        };
        let line = match line {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                errors += 1;
                send(&mut write, t, "500 5.5.2 Line too long\r\n".into()).await?;
                if errors >= MAX_ERRORS {
                    break;
                }
                continue;
            }
            Line::Text(l) => l,
        };
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, args) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        let reply: Reply = match verb.as_str() {
            "HELO" | "EHLO" if args.is_empty() => Reply::new(501, "5.5.4 HELO/EHLO needs a domain"),
            "HELO" => {
                greeted = true;
                tx = None;
                Reply::new(250, &limits.hostname)
            }
            "EHLO" => {
                greeted = true;
                tx = None;
                let text = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE {}\r\n",
                    limits.hostname, limits.max_message_bytes
                );
                send(&mut write, t, text).await?;
                continue;
            }
            "MAIL" if !greeted => Reply::new(503, "5.5.1 Say HELO or EHLO first"),
            "MAIL" if tx.is_some() => {
                Reply::new(503, "5.5.1 A transaction is in progress; RSET first")
            }
            "MAIL" => match parse_path(args, "FROM:") {
                None => Reply::new(501, "5.5.4 Syntax: MAIL FROM:<address>"),
                Some((_, params))
                    if size_param(params).is_some_and(|n| n > limits.max_message_bytes as u64) =>
                {
                    Reply::new(
                        552,
                        format!(
                            "5.3.4 Message larger than the limit of {} bytes",
                            limits.max_message_bytes
                        ),
                    )
                }
                Some((from, _)) => match delivery.check_sender(&from).await {
                    Ok(()) => {
                        tx = Some(Transaction {
                            from,
                            rcpts: Vec::new(),
                        });
                        Reply::new(250, "2.1.0 OK")
                    }
                    Err(r) => r,
                },
            },
            "RCPT" => match (&mut tx, parse_path(args, "TO:")) {
                (None, _) => Reply::new(503, "5.5.1 Send MAIL first"),
                (Some(_), None) => Reply::new(501, "5.5.4 Syntax: RCPT TO:<address>"),
                (Some(t), Some(_)) if t.rcpts.len() >= limits.max_recipients => {
                    Reply::new(452, "4.5.3 Too many recipients")
                }
                (Some(t), Some((rcpt, _))) => match delivery.check_recipient(&rcpt).await {
                    Ok(()) => {
                        t.rcpts.push(rcpt);
                        Reply::new(250, "2.1.5 OK")
                    }
                    Err(r) => r,
                },
            },
            "DATA" => match &tx {
                None => Reply::new(503, "5.5.1 Send MAIL first"),
                Some(t) if t.rcpts.is_empty() => Reply::new(554, "5.5.1 No valid recipients"),
                Some(_) => {
                    send(
                        &mut write,
                        t,
                        "354 End data with <CR><LF>.<CR><LF>\r\n".into(),
                    )
                    .await?;
                    // Each read waits one timeout at most, the whole message ten.
                    let data = match tokio::time::timeout(
                        t * 10,
                        read_data(&mut read, limits.max_message_bytes, t),
                    )
                    .await
                    {
                        Err(_) | Ok(Err(DataError::Timeout)) => {
                            let _ = send(
                                &mut write,
                                t,
                                "421 4.4.2 Timeout; closing the connection\r\n".into(),
                            )
                            .await;
                            return Ok(());
                        }
                        Ok(Err(DataError::Io(e))) => return Err(e),
                        Ok(Err(DataError::Eof)) => return Ok(()),
                        Ok(Ok(d)) => d,
                    };
                    let Some(t) = tx.take() else { continue };
                    match data {
                        None => Reply::new(
                            552,
                            format!(
                                "5.3.4 Message larger than the limit of {} bytes",
                                limits.max_message_bytes
                            ),
                        ),
                        Some(bytes) => delivery.deliver(&t.from, &t.rcpts, bytes).await,
                    }
                }
            },
            "RSET" => {
                tx = None;
                Reply::new(250, "2.0.0 OK")
            }
            "NOOP" => Reply::new(250, "2.0.0 OK"),
            "VRFY" => Reply::new(252, "2.5.2 Cannot VRFY; send the message and see"),
            "HELP" => Reply::new(
                214,
                "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT",
            ),
            "QUIT" => {
                let _ = send(&mut write, t, "221 2.0.0 Bye\r\n".into()).await;
                return Ok(());
            }
            "STARTTLS" | "AUTH" | "BDAT" | "ETRN" | "EXPN" | "TURN" => {
                Reply::new(502, "5.5.1 Command not implemented")
            }
            _ => Reply::new(500, "5.5.2 Command not recognized"),
        };
        if reply.code >= 500 && reply.code != 552 && reply.code != 550 && reply.code != 554 {
            errors += 1;
        }
        send(&mut write, t, reply.line()).await?;
        if errors >= MAX_ERRORS {
            let _ = send(
                &mut write,
                t,
                "421 4.7.0 Too many errors; closing the connection\r\n".into(),
            )
            .await;
            return Ok(());
        }
    }
    let _ = send(
        &mut write,
        t,
        "421 4.7.0 Too many commands; closing the connection\r\n".into(),
    )
    .await;
    Ok(())
}

enum DataError {
    Io(std::io::Error),
    Timeout,
    Eof,
}

/// The message after DATA up to the lone `.` line, dot-unstuffed. `None`: it was larger
/// than `max` (read to its end and dropped, so the connection stays in step).
async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    per_read: Duration,
) -> Result<Option<Vec<u8>>, DataError> {
    let mut data = Vec::new();
    let mut over = false;
    loop {
        // A line may be as long as the whole message may be.
        let line = match tokio::time::timeout(per_read, read_line(r, max + 2)).await {
            Err(_) => return Err(DataError::Timeout),
            Ok(Err(e)) => return Err(DataError::Io(e)),
            Ok(Ok(l)) => l,
        };
        let line = match line {
            Line::Eof => return Err(DataError::Eof),
            Line::TooLong => {
                over = true;
                continue;
            }
            Line::Text(l) => l,
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok((!over).then_some(data));
        }
        let body = line.strip_prefix(b".").unwrap_or(&line);
        if over || data.len() + body.len() > max {
            over = true;
            data = Vec::new();
            continue;
        }
        data.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::AsyncReadExt;

    /// Sender, recipients, data of a delivered message.
    type Delivered = (String, Vec<String>, Vec<u8>);

    #[derive(Default)]
    struct Sink {
        got: Mutex<Vec<Delivered>>,
    }

    impl Delivery for Sink {
        async fn check_sender(&self, from: &str) -> Result<(), Reply> {
            if from == "flood@example.org" {
                Err(Reply::new(451, "4.7.1 slow down"))
            } else {
                Ok(())
            }
        }
        async fn check_recipient(&self, rcpt: &str) -> Result<(), Reply> {
            if rcpt.starts_with("in@") {
                Ok(())
            } else {
                Err(Reply::new(550, "5.1.1 No such mailbox here"))
            }
        }
        async fn deliver(&self, from: &str, rcpts: &[String], data: Vec<u8>) -> Reply {
            self.got
                .lock()
                .unwrap()
                .push((from.to_string(), rcpts.to_vec(), data));
            Reply::new(250, "2.0.0 queued")
        }
    }

    async fn converse(input: &[u8], max: usize) -> (String, Vec<Delivered>) {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let sink = Sink::default();
        let limits = Limits {
            hostname: "mx.test".into(),
            max_message_bytes: max,
            max_recipients: 2,
            timeout: Duration::from_secs(5),
        };
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        session(server, &sink, &limits).await.unwrap();
        let mut out = String::new();
        client.read_to_string(&mut out).await.unwrap();
        (out, sink.got.into_inner().unwrap())
    }

    fn codes(out: &str) -> Vec<&str> {
        out.lines().map(|l| &l[..3]).collect()
    }

    #[tokio::test]
    async fn a_pipelined_conversation_with_dot_unstuffing() {
        let input = b"EHLO client\r\nMAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<nobody@x>\r\nRCPT TO:<in@x>\r\nDATA\r\nSubject: hi\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        let (out, got) = converse(input, 1000).await;
        assert_eq!(
            codes(&out),
            ["220", "250", "250", "250", "250", "250", "250", "550", "250", "354", "250", "221"],
            "{out}"
        );
        assert!(out.contains("250 SIZE 1000"), "{out}");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "a@example.org");
        assert_eq!(got[0].1, vec!["in@x".to_string()]);
        assert_eq!(got[0].2, b"Subject: hi\r\n\r\n.leading dot\r\n");
    }

    #[tokio::test]
    async fn order_size_and_limits() {
        let big = format!("HELO c\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<in@x>\r\nDATA\r\n{}\r\n.\r\nMAIL FROM:<a@b.org> SIZE=99999\r\nMAIL FROM:<flood@example.org>\r\nRSET\r\nRCPT TO:<in@x>\r\nMAIL FROM:<>\r\nRCPT TO:<in@1>\r\nRCPT TO:<in@2>\r\nRCPT TO:<in@3>\r\nDATA\r\nx\r\n.\r\nNOOP\r\nBOGUS\r\n", "y".repeat(300));
        let (out, got) = converse(big.as_bytes(), 100).await;
        assert_eq!(
            codes(&out),
            [
                "220", "250", "250", "250", "354", "552", "552", "451", "250", "503", "250", "250",
                "250", "452", "354", "250", "250", "500"
            ],
            "{out}"
        );
        assert_eq!(got.len(), 1, "the oversized message is not delivered");
        assert_eq!(got[0].0, "");
        assert_eq!(got[0].2, b"x\r\n");
        let (out, _) = converse(b"MAIL FROM:<a@b>\r\nDATA\r\n", 100).await;
        assert_eq!(codes(&out), ["220", "503", "503"], "{out}");
        let long = format!("HELO {}\r\nNOOP\r\n", "h".repeat(MAX_COMMAND_LINE + 10));
        let (out, _) = converse(long.as_bytes(), 100).await;
        assert_eq!(codes(&out), ["220", "500", "250"], "{out}");
    }
}
