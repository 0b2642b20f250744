//! A thin client of the public API, timing every call into the run's histograms.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::record::Recorder;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub recorder: Recorder,
}

/// An answer: status, the position token of a command, and the JSON body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, recorder: Recorder) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            recorder,
        })
    }

    /// Sends one request; `endpoint` names its histogram (`POST /api/bookings`).
    pub async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let started = Instant::now();
        let response = request.send().await.with_context(|| endpoint.to_owned())?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        self.recorder
            .latency(endpoint, status.as_u16(), started.elapsed());
        Ok(Answer { status, body })
    }

    pub async fn register(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                "POST /api/auth/register",
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": password, "name": "Load Buyer"})),
            )
            .await?;
        match answer.status.as_u16() {
            201 => Ok(answer.body["user_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()),
            status => bail!("register {email}: {status} {}", answer.body),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                "POST /api/auth/login",
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await?;
        if answer.status != StatusCode::OK {
            bail!("login {email}: {} {}", answer.status, answer.body);
        }
        Ok(answer.body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// A command that must succeed with `want`; returns the body.
    pub async fn expect(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        want: u16,
    ) -> anyhow::Result<Value> {
        let answer = self.call(endpoint, method, path, Some(token), body).await?;
        if answer.status.as_u16() != want {
            bail!("{endpoint} {path}: {} {}", answer.status, answer.body);
        }
        Ok(answer.body)
    }
}
