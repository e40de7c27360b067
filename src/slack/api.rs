//! The one Slack Web API client: every post goes through it, paced per channel,
//! retried on `429 Retry-After` and transient failures until its deadline, and
//! counted by method and status. Tokens stay inside; errors never carry them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::*;
use slack_morphism::prelude::*;
use thiserror::Error;
use tracing::{debug, warn};
use url::Url;

use super::limiter::ChannelLimiter;
pub use super::limiter::SharedPace;
use super::render::render;
use crate::domain::ids::ChannelId;
use crate::domain::outbox::Priority;
use crate::domain::view::Message;
use crate::metrics::{ApiLabels, Metrics};

type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Bound on a single HTTP round trip to Slack.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between retries of transient failures: doubles up to this ceiling.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum ApiError {
    /// Slack answered `ok: false` with this error code (`channel_not_found`, …).
    #[error("Slack refused {method}: {code}")]
    Refused { method: &'static str, code: String },
    /// Transient failures went on until the deadline.
    #[error("{method} still failing after {attempts} attempts: {last}")]
    GaveUp {
        method: &'static str,
        attempts: u32,
        last: String,
        /// Slack's `Retry-After` on the last attempt, when it was rate limited: a caller
        /// that tries again later must wait at least this long.
        retry_after: Option<Duration>,
    },
    #[error("cannot build the HTTPS client: {0}")]
    Setup(String),
}

/// The metadata that tags a message for [`SlackApi::find_tagged`]: `event_type`, and the
/// `event_payload` key holding the tag.
const TAG_EVENT: &str = "odorbot_outbox";
const TAG_KEY: &str = "outbox_id";
/// Pages of history [`SlackApi::find_tagged`] reads at most.
const TAG_PAGES: usize = 10;

/// A page of `conversations.history` or `conversations.replies`, read only as far as
/// [`SlackApi::find_tagged`] needs. Messages stay JSON: another app's metadata may hold any
/// JSON (numbers, arrays), which slack-morphism's string-only payload type would refuse,
/// failing the whole page and with it the lookup.
#[derive(Debug, serde::Deserialize)]
struct HistoryPage {
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    response_metadata: Option<serde_json::Value>,
}

impl HistoryPage {
    /// The `ts` of the message carrying `tag` in its metadata.
    fn tagged(&self, tag: &str) -> Option<String> {
        self.messages
            .iter()
            .find(|m| {
                let meta = &m["metadata"];
                meta["event_type"] == TAG_EVENT && meta["event_payload"][TAG_KEY] == tag
            })
            .and_then(|m| m["ts"].as_str().map(str::to_owned))
    }

    /// The cursor of the next page; Slack's empty cursor means there is none.
    fn next_cursor(&self) -> Option<String> {
        self.response_metadata.as_ref()?["next_cursor"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
    }
}

/// Slack's error codes for a token it does not accept.
const AUTH_CODES: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
];

impl ApiError {
    /// Whether Slack refused the token itself (not the request).
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Refused { code, .. } if AUTH_CODES.contains(&code.as_str()))
    }
}

/// An attempt that got no answer in its time.
#[derive(Debug, thiserror::Error)]
#[error("timeout: no answer within {}s", .0.as_secs_f64())]
struct NoAnswer(Duration);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    After(Duration),
    Backoff,
    Never,
}

/// Slack error codes that describe a passing condition on Slack's side.
const TRANSIENT_CODES: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

fn classify(err: &SlackClientError) -> Retry {
    match err {
        SlackClientError::RateLimitError(e) => {
            Retry::After(e.retry_after.unwrap_or(Duration::from_secs(1)))
        }
        SlackClientError::ApiError(e) if TRANSIENT_CODES.contains(&e.code.as_str()) => {
            Retry::Backoff
        }
        SlackClientError::ApiError(_) => Retry::Never,
        SlackClientError::HttpError(e) if e.status_code.is_server_error() => Retry::Backoff,
        SlackClientError::HttpError(e) if e.status_code.as_u16() == 408 => Retry::Backoff,
        SlackClientError::HttpError(_) => Retry::Never,
        // Connection refused, reset, TLS or a truncated body: the network, not the request.
        _ => Retry::Backoff,
    }
}

/// The bound on each attempt of a call retried until `deadline`: a short deadline bounds
/// each attempt too; a single attempt (no deadline) gets the usual bound.
fn per_call(deadline: Duration) -> Duration {
    if deadline.is_zero() {
        CALL_TIMEOUT
    } else {
        CALL_TIMEOUT.min(deadline)
    }
}

fn status_label(result: &Result<(), &SlackClientError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(SlackClientError::RateLimitError(_)) => "rate_limited",
        Err(SlackClientError::ApiError(_)) => "api_error",
        Err(SlackClientError::HttpError(_)) => "http_error",
        Err(_) => "transport_error",
    }
}

/// A short description of a failure that is safe to log: no bodies, no URLs.
fn describe(err: &SlackClientError) -> String {
    match err {
        SlackClientError::ApiError(e) => format!("ok=false error={}", e.code),
        SlackClientError::HttpError(e) => format!("HTTP {}", e.status_code),
        SlackClientError::RateLimitError(e) => {
            format!("rate limited, retry after {:?}", e.retry_after)
        }
        SlackClientError::HttpProtocolError(e) => match &e.cause {
            Some(cause) => crate::netcause::describe(&**cause),
            None => "connection failed".into(),
        },
        SlackClientError::ProtocolError(_) => "unreadable answer".into(),
        other => format!("{other}").chars().take(120).collect(),
    }
}

/// Whom the call speaks for.
#[derive(Debug, Clone, Copy)]
enum As {
    Bot,
    App,
}

/// Settings of the Slack clients (Web API and socket mode), built by the configuration.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Base of the Web API; tests point it at a fake Slack.
    pub api_url: Url,
    /// App-level token (`xapp-…`) for `apps.connections.open`.
    pub app_token: SecretString,
    /// Bot token (`xoxb-…`) for every other call.
    pub bot_token: SecretString,
    /// Socket connections kept open; at least two, so a refresh or a drop never leaves a gap.
    pub connections: usize,
    /// How often each connection pings Slack; two missed pongs drop it.
    pub ping_interval: Duration,
    /// Ceiling of the reconnect backoff.
    pub reconnect_max_backoff: Duration,
    /// Messages per second per channel (Slack allows about one).
    pub channel_rate_per_sec: u32,
    /// Short bursts above the rate that a channel tolerates.
    pub channel_burst: u32,
    /// How long a must-send message keeps being retried on transient errors.
    pub send_deadline: Duration,
    /// Before re-sending a message whose send may have happened, look for it in the
    /// channel's history (needs the history scopes); off, such a message may come twice.
    pub resend_check: bool,
}

pub struct SlackApi {
    client: Arc<Client>,
    app_token: SecretString,
    bot_token: SecretString,
    limiter: ChannelLimiter,
    /// The pacing every replica books in, after this process's own line.
    shared: Option<Arc<dyn SharedPace>>,
    send_deadline: Duration,
    metrics: Metrics,
}

/// Who the bot is, from `auth.test`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub team_id: String,
    pub user_id: String,
}

impl SlackApi {
    /// # Errors
    /// [`ApiError::Setup`] when the system's TLS roots cannot be loaded.
    pub fn new(config: &SlackConfig, metrics: Metrics) -> Result<Self, ApiError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ApiError::Setup(e.to_string()))?;
        // Plain HTTP only when configured so, which tests do against the fake Slack.
        let https = if config.api_url.scheme() == "http" {
            https.https_or_http()
        } else {
            https.https_only()
        };
        let connector =
            SlackClientHyperConnector::from(https.enable_http1().enable_http2().build())
                .with_slack_api_url(config.api_url.as_str().trim_end_matches('/'));
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            app_token: config.app_token.clone(),
            bot_token: config.bot_token.clone(),
            limiter: ChannelLimiter::new(config.channel_rate_per_sec, config.channel_burst),
            shared: None,
            send_deadline: config.send_deadline,
            metrics,
        })
    }

    /// Paces channels together with the other replicas through `shared`.
    #[must_use]
    pub fn with_shared_pacing(mut self, shared: Arc<dyn SharedPace>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Waits for `channel`'s slot: in this process's line by priority, booked in the
    /// schedule the replicas share.
    async fn pace(&self, channel: &str, priority: Priority) {
        self.limiter
            .acquire(channel, priority, self.shared.as_deref())
            .await;
    }

    fn token(&self, who: As) -> SlackApiToken {
        let secret = match who {
            As::Bot => &self.bot_token,
            As::App => &self.app_token,
        };
        SlackApiToken::new(SlackApiTokenValue::new(secret.expose_secret().to_owned()))
    }

    /// Runs `call` until it succeeds, fails permanently, or `deadline` passes; paces
    /// by channel when given, in line by priority.
    async fn call<T, F, Fut>(
        &self,
        method: &'static str,
        pace: Option<(&str, Priority)>,
        deadline: Duration,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ClientResult<T>>,
    {
        self.call_bounded(method, pace, deadline, per_call(deadline), call)
            .await
    }

    /// As [`SlackApi::call`], each attempt bounded by `per_call`.
    async fn call_bounded<T, F, Fut>(
        &self,
        method: &'static str,
        pace: Option<(&str, Priority)>,
        deadline: Duration,
        per_call: Duration,
        call: F,
    ) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ClientResult<T>>,
    {
        let give_up_at = Instant::now() + deadline;
        let mut backoff = Duration::from_millis(250);
        let mut attempts = 0;
        loop {
            if let Some((channel, priority)) = pace {
                self.pace(channel, priority).await;
            }
            attempts += 1;
            let outcome = match tokio::time::timeout(per_call, call()).await {
                Ok(r) => r,
                Err(_) => Err(SlackClientError::HttpProtocolError(
                    SlackClientHttpProtocolError::new().with_cause(Box::new(NoAnswer(per_call))),
                )),
            };
            let status = status_label(&outcome.as_ref().map(|_| ()));
            self.metrics
                .slack_api_calls
                .get_or_create(&ApiLabels { method, status })
                .inc();
            let err = match outcome {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let retry = classify(&err);
            let wait = match retry {
                Retry::Never => {
                    let code = match &err {
                        SlackClientError::ApiError(e) => e.code.clone(),
                        other => describe(other),
                    };
                    return Err(ApiError::Refused { method, code });
                }
                Retry::After(d) => d,
                Retry::Backoff => {
                    let d = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    d
                }
            };
            if Instant::now() + wait > give_up_at {
                return Err(ApiError::GaveUp {
                    method,
                    attempts,
                    last: describe(&err),
                    retry_after: match retry {
                        Retry::After(d) => Some(d),
                        _ => None,
                    },
                });
            }
            debug!(method, attempts, wait_ms = wait.as_millis() as u64, error = %describe(&err), "retrying Slack call");
            tokio::time::sleep(wait).await;
        }
    }

    /// `auth.test` with the bot token: who odorbot is, and proof that Slack answers.
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses the token or cannot be reached in `deadline`.
    pub async fn auth_test(&self, deadline: Duration) -> Result<Identity, ApiError> {
        let token = self.token(As::Bot);
        let res = self
            .call("auth.test", None, deadline, || {
                let session = self.client.open_session(&token);
                async move { session.auth_test().await }
            })
            .await?;
        Ok(Identity {
            team_id: res.team_id.to_string(),
            user_id: res.user_id.to_string(),
        })
    }

    /// `apps.connections.open` with the app token: a one-time WebSocket URL.
    ///
    /// # Errors
    /// [`ApiError`]; one attempt only, since the caller owns the reconnect backoff.
    pub async fn open_socket_url(&self) -> Result<String, ApiError> {
        let token = self.token(As::App);
        let res = self
            .call("apps.connections.open", None, Duration::ZERO, || {
                let session = self.client.open_session(&token);
                async move {
                    session
                        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
                        .await
                }
            })
            .await?;
        Ok(res.url.0.to_string())
    }

    /// Posts a message (in a thread when `thread_ts` is given); retried until the send
    /// deadline, because what odorbot posts this way must arrive. Returns its `ts`.
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses the message or stays unreachable past the deadline.
    pub async fn post_message(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        message: &Message,
    ) -> Result<String, ApiError> {
        self.post_message_as(channel, thread_ts, message, Priority::Routine)
            .await
    }

    /// As [`SlackApi::post_message`], in the channel's pacing line at `priority`.
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses the message or stays unreachable past the deadline.
    pub async fn post_message_as(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        message: &Message,
        priority: Priority,
    ) -> Result<String, ApiError> {
        self.post_message_within(channel, thread_ts, message, self.send_deadline, priority)
            .await
    }

    /// As [`SlackApi::post_message`], retrying transient failures only until `deadline`
    /// (the outbox retries later itself).
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses or stays unreachable past the deadline.
    pub async fn post_message_within(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        message: &Message,
        deadline: Duration,
        priority: Priority,
    ) -> Result<String, ApiError> {
        self.post(channel, thread_ts, render(message), deadline, priority)
            .await
    }

    /// As [`SlackApi::post_message_within`], the message carrying `tag` in its metadata,
    /// so that [`SlackApi::find_tagged`] can tell later whether Slack has it.
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses or stays unreachable past the deadline.
    pub async fn post_tagged(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        message: &Message,
        tag: &str,
        deadline: Duration,
        priority: Priority,
    ) -> Result<String, ApiError> {
        let metadata = SlackMessageMetadata::new(TAG_EVENT.to_owned()).with_event_payload(
            std::collections::HashMap::from([(TAG_KEY.to_owned(), tag.to_owned())]),
        );
        let content = render(message).with_metadata(metadata);
        self.post(channel, thread_ts, content, deadline, priority)
            .await
    }

    async fn post(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        content: SlackMessageContent,
        deadline: Duration,
        priority: Priority,
    ) -> Result<String, ApiError> {
        let token = self.token(As::Bot);
        let request =
            SlackApiChatPostMessageRequest::new(SlackChannelId::new(channel.to_string()), content)
                .opt_thread_ts(thread_ts.map(|t| SlackTs::new(t.to_owned())));
        let res = self
            .call(
                "chat.postMessage",
                Some((channel.as_str(), priority)),
                deadline,
                || {
                    let session = self.client.open_session(&token);
                    let request = request.clone();
                    async move { session.chat_post_message(&request).await }
                },
            )
            .await?;
        Ok(res.ts.to_string())
    }

    /// The `ts` of the message tagged `tag` (see [`SlackApi::post_tagged`]) in `thread_ts`
    /// (`conversations.replies`) or in the channel itself (`conversations.history`, newest
    /// first), or `None` when Slack has no such message.
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses or cannot be reached in a few seconds: whether it
    /// has the message is then unknown.
    pub async fn find_tagged(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        tag: &str,
    ) -> Result<Option<String>, ApiError> {
        let token = self.token(As::Bot);
        let method = if thread_ts.is_some() {
            "conversations.replies"
        } else {
            "conversations.history"
        };
        let mut cursor: Option<String> = None;
        // Bounded: a message looked for is minutes old, far fewer pages back than this
        // in a channel, and threads are short.
        for _ in 0..TAG_PAGES {
            let params: Vec<(&str, Option<String>)> = vec![
                ("channel", Some(channel.to_string())),
                ("ts", thread_ts.map(str::to_owned)),
                ("limit", Some("200".to_owned())),
                ("include_all_metadata", Some("true".to_owned())),
                ("cursor", cursor.clone()),
            ];
            let page: HistoryPage = self
                .call(method, None, Duration::from_secs(5), || {
                    let session = self.client.open_session(&token);
                    let params = params.clone();
                    async move {
                        session
                            .http_session_api
                            .http_get(method, &params, None)
                            .await
                    }
                })
                .await?;
            if let Some(ts) = page.tagged(tag) {
                return Ok(Some(ts));
            }
            cursor = page.next_cursor();
            if cursor.is_none() {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Replaces a message odorbot posted (an incident's root message as its state moves).
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses or stays unreachable past the deadline.
    pub async fn update_message(
        &self,
        channel: &ChannelId,
        ts: &str,
        message: &Message,
    ) -> Result<(), ApiError> {
        let token = self.token(As::Bot);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_string()),
            render(message),
            SlackTs::new(ts.to_owned()),
        );
        self.call(
            "chat.update",
            Some((channel.as_str(), Priority::Routine)),
            self.send_deadline,
            || {
                let session = self.client.open_session(&token);
                let request = request.clone();
                async move { session.chat_update(&request).await }
            },
        )
        .await
        .map(|_| ())
    }

    /// Shares a file in a channel (in a thread when `thread_ts` is given), the way Slack
    /// asks for it now: `files.getUploadURLExternal`, the bytes to the URL it returns, then
    /// `files.completeUploadExternal`. Needs the `files:write` scope.
    ///
    /// # Errors
    /// [`ApiError`] from whichever of the three calls failed.
    pub async fn upload_file(
        &self,
        channel: &ChannelId,
        thread_ts: Option<&str>,
        filename: &str,
        content: Vec<u8>,
        comment: &str,
    ) -> Result<(), ApiError> {
        let token = self.token(As::Bot);
        let deadline = Duration::from_secs(30);
        let ask = SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_owned(), content.len());
        let target = self
            .call("files.getUploadURLExternal", None, deadline, || {
                let session = self.client.open_session(&token);
                let ask = ask.clone();
                async move { session.get_upload_url_external(&ask).await }
            })
            .await?;
        let upload = SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url,
            content,
            "application/octet-stream".to_owned(),
        );
        self.call("files.upload", None, deadline, || {
            let session = self.client.open_session(&token);
            let upload = upload.clone();
            async move { session.files_upload_via_url(&upload).await }
        })
        .await?;
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(target.file_id).with_title(filename.to_owned()),
        ])
        .with_channel_id(SlackChannelId::new(channel.to_string()))
        .opt_thread_ts(thread_ts.map(|ts| SlackTs::new(ts.to_owned())))
        .with_initial_comment(comment.to_owned());
        self.call(
            "files.completeUploadExternal",
            Some((channel.as_str(), Priority::Routine)),
            deadline,
            || {
                let session = self.client.open_session(&token);
                let complete = complete.clone();
                async move { session.files_complete_upload_external(&complete).await }
            },
        )
        .await
        .map(|_| ())
    }

    /// The members of a user group (`usergroups.users.list`).
    ///
    /// # Errors
    /// [`ApiError`] when Slack refuses or cannot be reached in a few seconds.
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, ApiError> {
        let token = self.token(As::Bot);
        let request =
            SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId::new(group.to_owned()));
        let res = self
            .call(
                "usergroups.users.list",
                None,
                Duration::from_secs(5),
                || {
                    let session = self.client.open_session(&token);
                    let request = request.clone();
                    async move { session.usergroups_users_list(&request).await }
                },
            )
            .await?;
        Ok(res.users.into_iter().map(|u| u.to_string()).collect())
    }

    /// Opens a modal with one multi-line text input (`block_id` `text`, `action_id`
    /// `text`); its submission comes back as `view_submission` with `callback_id` and
    /// `private_metadata`.
    ///
    /// # Errors
    /// [`ApiError`]; the trigger is valid for three seconds, so there is one attempt.
    pub async fn open_text_modal(
        &self,
        trigger_id: &str,
        title: &str,
        label: &str,
        callback_id: &str,
        private_metadata: &str,
    ) -> Result<(), ApiError> {
        let token = self.token(As::Bot);
        let input = SlackInputBlock::new(
            SlackBlockPlainText::new(label.to_owned()).into(),
            SlackInputBlockElement::PlainTextInput(
                SlackBlockPlainTextInputElement::new()
                    .with_action_id(SlackActionId::new("text".into()))
                    .with_multiline(true)
                    .with_max_length(2000),
            ),
        )
        .with_block_id(SlackBlockId::new("text".into()));
        let view = SlackModalView::new(
            SlackBlockPlainText::new(title.to_owned()).into(),
            vec![input.into()],
        )
        .with_submit(SlackBlockPlainText::new("Post".into()).into())
        .with_callback_id(SlackCallbackId::new(callback_id.to_owned()))
        .with_private_metadata(private_metadata.to_owned());
        let request = SlackApiViewsOpenRequest::new(
            SlackTriggerId::new(trigger_id.to_owned()),
            SlackView::Modal(view),
        );
        self.call("views.open", None, Duration::ZERO, || {
            let session = self.client.open_session(&token);
            let request = request.clone();
            async move { session.views_open(&request).await }
        })
        .await
        .map(|_| ())
    }

    /// Replies through a slash command's or button's `response_url` (ephemeral unless
    /// `replace_original`), retrying transient failures until `deadline`.
    ///
    /// # Errors
    /// [`ApiError`] when the reply cannot be delivered within `deadline`.
    pub async fn respond_within(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        deadline: Duration,
    ) -> Result<(), ApiError> {
        let per_call = per_call(deadline);
        self.post_response(response_url, message, replace_original, deadline, per_call)
            .await
            .inspect_err(|e| warn!(error = %e, "reply through response_url failed"))
    }

    /// One POST to a `response_url`, bounded by `budget`, not retried: the reply queue
    /// retries later itself, without holding anyone meanwhile. A rate-limited attempt
    /// comes back as [`ApiError::GaveUp`] with Slack's `Retry-After`.
    ///
    /// # Errors
    /// [`ApiError::Refused`] for a refusal that retrying cannot change (a 4xx other than
    /// 408 and 429, an unusable URL); [`ApiError::GaveUp`] for anything passing.
    pub async fn respond_once(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        budget: Duration,
    ) -> Result<(), ApiError> {
        self.post_response(
            response_url,
            message,
            replace_original,
            Duration::ZERO,
            budget,
        )
        .await
    }

    async fn post_response(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        deadline: Duration,
        per_call: Duration,
    ) -> Result<(), ApiError> {
        let url: url::Url = response_url.parse().map_err(|_| ApiError::Refused {
            method: "response_url",
            code: "invalid response_url".into(),
        })?;
        let request = SlackApiPostWebhookMessageRequest::new(render(message))
            .with_replace_original(replace_original);
        self.call_bounded("response_url", None, deadline, per_call, || {
            let request = request.clone();
            let url = SlackResponseUrl::new(url.clone());
            let client = self.client.clone();
            async move { client.respond_to_event(&url, &request).await.map(|_| ()) }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_for_retry() {
        let limited = SlackClientError::RateLimitError(
            SlackRateLimitError::new().with_retry_after(Duration::from_secs(7)),
        );
        assert_eq!(classify(&limited), Retry::After(Duration::from_secs(7)));
        let api = |code: &str| SlackClientError::ApiError(SlackClientApiError::new(code.into()));
        assert_eq!(classify(&api("channel_not_found")), Retry::Never);
        assert_eq!(classify(&api("internal_error")), Retry::Backoff);
        let http = |s: u16| {
            SlackClientError::HttpError(SlackClientHttpError::new(
                http::StatusCode::from_u16(s).unwrap(),
            ))
        };
        assert_eq!(classify(&http(503)), Retry::Backoff);
        assert_eq!(classify(&http(404)), Retry::Never);
        let net = SlackClientError::HttpProtocolError(SlackClientHttpProtocolError::new());
        assert_eq!(classify(&net), Retry::Backoff);
    }

    const HISTORY: &str =
        include_str!("../../tests/fixtures/slack/web-api/conversations.history-java-sdk.json");
    const REPLIES: &str =
        include_str!("../../tests/fixtures/slack/web-api/conversations.replies-java-sdk.json");
    const FOREIGN: &str = include_str!(
        "../../tests/fixtures/slack/web-api/chat.postMessage-request-metadata-python-sdk.json"
    );

    /// A java-slack-sdk shape sample as its mock server serves it (the first `"ok": false,`
    /// flipped), read as a page; `edit` changes its one message first.
    fn sample_page(sample: &str, edit: impl Fn(&mut serde_json::Value)) -> HistoryPage {
        let served = sample.replacen("\"ok\": false,", "\"ok\": true,", 1);
        let mut page: serde_json::Value = serde_json::from_str(&served).unwrap();
        edit(&mut page["messages"][0]);
        serde_json::from_value(page).unwrap()
    }

    // The whole samples, masked values and all, are read: only the fields looked at matter.
    #[test]
    fn history_and_replies_samples_are_read_and_searched_by_tag() {
        for sample in [HISTORY, REPLIES] {
            let untagged = sample_page(sample, |_| {});
            assert_eq!(untagged.messages.len(), 1);
            assert_eq!(
                untagged.tagged("ob-1"),
                None,
                "the sample's metadata is empty"
            );
            // Slack's "no more pages", an empty cursor, reads as none: the lookup stops.
            assert_eq!(untagged.next_cursor(), None);
            let tagged = sample_page(sample, |m| {
                m["metadata"] = serde_json::json!({"event_type": TAG_EVENT, "event_payload": {TAG_KEY: "ob-1"}});
            });
            assert_eq!(tagged.tagged("ob-1").as_deref(), Some("0000000000.000000"));
            assert_eq!(tagged.tagged("ob-2"), None);
        }
    }

    // Slack keeps metadata values as JSON: python-slack-sdk posts a number and an array. A
    // page holding such a message is still searched.
    #[test]
    fn another_apps_metadata_does_not_stop_the_search() {
        let foreign: serde_json::Value = serde_json::from_str(FOREIGN).unwrap();
        assert!(
            foreign["metadata"]["event_payload"]
                .as_object()
                .unwrap()
                .values()
                .any(|v| !v.is_string())
        );
        let page: HistoryPage = serde_json::from_value(serde_json::json!({
            "ok": true,
            "messages": [
                {"type": "message", "ts": "1.000002", "metadata": foreign["metadata"]},
                {"type": "message", "ts": "1.000001",
                 "metadata": {"event_type": TAG_EVENT, "event_payload": {TAG_KEY: "ob-1"}}},
            ],
            "has_more": true,
            "response_metadata": {"next_cursor": "page:2"},
        }))
        .unwrap();
        assert_eq!(page.tagged("ob-1").as_deref(), Some("1.000001"));
        assert_eq!(page.next_cursor().as_deref(), Some("page:2"));
    }

    // What `post_tagged` sends is what `tagged` looks for.
    #[test]
    fn the_posted_tag_is_the_one_searched_for() {
        let ours = SlackMessageMetadata::new(TAG_EVENT.to_owned()).with_event_payload(
            std::collections::HashMap::from([(TAG_KEY.to_owned(), "ob-1".to_owned())]),
        );
        let wire = serde_json::to_value(&ours).unwrap();
        let page = HistoryPage {
            messages: vec![serde_json::json!({"ts": "1.5", "metadata": wire})],
            response_metadata: None,
        };
        assert_eq!(page.tagged("ob-1").as_deref(), Some("1.5"));
    }
}
