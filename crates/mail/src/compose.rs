//! The mails' words: a subject, a plain-text body and an HTML body per purpose.

use std::time::Duration;

use chatbot_domain::{AccountMail, TokenPurpose};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What may stay as it is in a query value: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A mail's subject and bodies.
#[derive(Debug)]
pub(crate) struct Composed {
    pub(crate) subject: &'static str,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// The words that differ between purposes.
struct Words {
    subject: &'static str,
    page: &'static str,
    action: &'static str,
    button: &'static str,
    ignore: &'static str,
}

fn words(purpose: TokenPurpose) -> Words {
    match purpose {
        TokenPurpose::VerifyEmail => Words {
            subject: "Verify your email address",
            page: "verify",
            action: "To verify your email address, open this link:",
            button: "Verify my email address",
            ignore: "If you did not ask for this, ignore this mail: the address stays \
                     unverified.",
        },
        TokenPurpose::ResetPassword => Words {
            subject: "Reset your password",
            page: "reset",
            action: "To choose a new password, open this link:",
            button: "Choose a new password",
            ignore: "If you did not ask for this, ignore this mail: your password stays \
                     as it is.",
        },
    }
}

/// The link a mail carries: `{public_url}/verify?token=…` or `{public_url}/reset?token=…`,
/// the token percent-encoded. `public_url` has no trailing slash.
pub(crate) fn link(public_url: &str, purpose: TokenPurpose, token: &str) -> String {
    let page = words(purpose).page;
    let token = utf8_percent_encode(token, QUERY_VALUE);
    format!("{public_url}/{page}?token={token}")
}

/// The subject and bodies of `mail`, its link under `public_url`.
pub(crate) fn compose(mail: &AccountMail, public_url: &str) -> Composed {
    let words = words(mail.purpose);
    let link = link(public_url, mail.purpose, mail.token.expose());
    let lifetime = describe(mail.purpose.lifetime());
    let name = mail.display_name.as_str();
    let text = format!(
        "Hello {name},\r\n\r\n{action}\r\n\r\n{link}\r\n\r\nThe link works once, for \
         {lifetime}.\r\n\r\n{ignore}\r\n",
        action = words.action,
        ignore = words.ignore,
    );
    let html = format!(
        "<!DOCTYPE html>\r\n<html>\r\n<head><meta charset=\"utf-8\"><title>{subject}</title></head>\r\n\
         <body>\r\n<p>Hello {name},</p>\r\n<p>{action}</p>\r\n\
         <p><a href=\"{href}\">{button}</a></p>\r\n<p>{shown}</p>\r\n\
         <p>The link works once, for {lifetime}.</p>\r\n<p>{ignore}</p>\r\n</body>\r\n</html>\r\n",
        subject = words.subject,
        name = escape(name),
        action = words.action,
        href = escape(&link),
        button = words.button,
        shown = escape(&link),
        ignore = words.ignore,
    );
    Composed {
        subject: words.subject,
        text,
        html,
    }
}

/// `duration` in words: "24 hours", "30 minutes", "1 hour", "90 seconds".
pub(crate) fn describe(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = if seconds >= 3600 && seconds % 3600 == 0 {
        (seconds / 3600, "hour")
    } else if seconds >= 60 && seconds % 60 == 0 {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// `text` safe in HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use chatbot_domain::{DisplayName, Email, SecretToken};

    use super::*;

    fn mail(purpose: TokenPurpose, name: &str, token: &str) -> AccountMail {
        AccountMail {
            to: Email::parse("ada@example.com").unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            purpose,
            token: SecretToken::new(token),
        }
    }

    #[test]
    fn lifetimes_are_in_words() {
        assert_eq!(describe(TokenPurpose::VerifyEmail.lifetime()), "24 hours");
        assert_eq!(
            describe(TokenPurpose::ResetPassword.lifetime()),
            "30 minutes"
        );
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn links_carry_the_token_url_safe() {
        assert_eq!(
            link(
                "http://localhost:5000",
                TokenPurpose::VerifyEmail,
                "abc-_DEF"
            ),
            "http://localhost:5000/verify?token=abc-_DEF"
        );
        assert_eq!(
            link(
                "https://x.org/app",
                TokenPurpose::ResetPassword,
                "a+b/c=d&e f"
            ),
            "https://x.org/app/reset?token=a%2Bb%2Fc%3Dd%26e%20f"
        );
    }

    #[test]
    fn a_verification_mail_says_what_to_do_and_for_how_long() {
        let composed = compose(
            &mail(TokenPurpose::VerifyEmail, "Ada", "tok"),
            "http://localhost:5000",
        );
        assert_eq!(composed.subject, "Verify your email address");
        assert!(composed.text.starts_with("Hello Ada,\r\n"));
        assert!(
            composed
                .text
                .contains("\r\nhttp://localhost:5000/verify?token=tok\r\n")
        );
        assert!(composed.text.contains("24 hours"));
        assert!(
            composed
                .text
                .contains("If you did not ask for this, ignore this mail")
        );
        assert!(
            composed
                .html
                .contains("<a href=\"http://localhost:5000/verify?token=tok\">")
        );
        assert!(composed.html.contains("24 hours"));
    }

    #[test]
    fn a_reset_mail_says_what_to_do_and_for_how_long() {
        let composed = compose(
            &mail(TokenPurpose::ResetPassword, "Ada", "tok"),
            "http://localhost:5000",
        );
        assert_eq!(composed.subject, "Reset your password");
        assert!(composed.text.contains("/reset?token=tok"));
        assert!(composed.text.contains("30 minutes"));
        assert!(composed.html.contains("30 minutes"));
        assert!(
            composed
                .html
                .contains("If you did not ask for this, ignore this mail")
        );
    }

    #[test]
    fn the_html_part_escapes_the_display_name() {
        let composed = compose(
            &mail(TokenPurpose::VerifyEmail, "<b>Ada</b> & \"Co\"", "tok"),
            "http://localhost:5000",
        );
        assert!(
            composed
                .html
                .contains("Hello &lt;b&gt;Ada&lt;/b&gt; &amp; &quot;Co&quot;,")
        );
        assert!(!composed.html.contains("<b>"));
        assert!(composed.text.contains("Hello <b>Ada</b> & \"Co\","));
    }
}
