//! `EmailSettings`: the SMTP server and sender, from the environment (or the same names as flags).

use std::fmt;

use clap::{ArgAction, Args};

#[derive(Clone, Args)]
pub struct EmailSettings {
    /// SMTP server; mail is sent only when set (unset: email is disabled).
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "SMTP_PORT", default_value_t = 25)]
    pub smtp_port: u16,
    /// Login, when the server wants one (with `SMTP_PASSWORD`).
    #[arg(long, env = "SMTP_USERNAME", hide_env_values = true)]
    pub smtp_username: Option<String>,
    #[arg(long, env = "SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Upgrade the connection with STARTTLS (required, not opportunistic, when true).
    #[arg(long, env = "SMTP_STARTTLS", default_value_t = false, action = ArgAction::Set)]
    pub smtp_starttls: bool,
    /// The `From` of every mail.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Ticketing <tickets@ticketing.local>"
    )]
    pub mail_from: String,
}

impl EmailSettings {
    /// Settings for a server on `host:port` without login or TLS (tests, local sinks).
    pub fn plain(host: &str, port: u16) -> Self {
        Self {
            smtp_host: Some(host.to_owned()),
            smtp_port: port,
            smtp_username: None,
            smtp_password: None,
            smtp_starttls: false,
            mail_from: "Ticketing <tickets@ticketing.local>".into(),
        }
    }
}

/// Secrets stay out of logs: the username and password are only said to be present.
impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field(
                "smtp_username",
                &self.smtp_username.as_ref().map(|_| "<set>"),
            )
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<set>"),
            )
            .field("smtp_starttls", &self.smtp_starttls)
            .field("mail_from", &self.mail_from)
            .finish()
    }
}
