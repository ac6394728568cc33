//! Mastodon: one instance's REST API (`HERALD_MASTODON_API_URL`; accounts are that instance's).
//!
//! | step | call |
//! |---|---|
//! | media | `POST /api/v2/media` (multipart `file`, `description`); a 202 is still processing: `GET /api/v1/media/{id}` until it answers 200 |
//! | status, thread reply | `POST /api/v1/statuses` (`status`, `media_ids`, `in_reply_to_id`) with `Idempotency-Key` |
//! | lookup after a lost answer | `GET /api/v1/accounts/{id}/statuses` (the 40 newest), the text read back from `content` |
//! | who a token is | `GET /api/v1/accounts/verify_credentials` |
//! | timeline | the same listing, `since_id` and `max_id` |
//! | engagement | `GET /api/v1/statuses/{id}`: favourites, replies, boosts |
//!
//! The `Idempotency-Key` is the variant's step, the same in every attempt and invocation:
//! Mastodon answers a repeat within an hour with the status the first one created. Herald
//! still looks a status up before any retry after a lost answer, as on every platform; the key
//! guards the retry that follows a lookup which missed a status Mastodon had not listed yet.
//!
//! Errors are `{"error": "..."}`: 401 a refused token, 429 rate limited (`X-RateLimit-Reset`,
//! ISO 8601), 5xx transient, 422 and other 4xx permanent.

use super::*;
use herald_domain::ingest::{Page, Position};
use herald_domain::model::Account as ConnectedAccount;
use herald_domain::publishing::platform::Ownership;

/// How many statuses a lookup reads (Mastodon's most per page).
const LOOKUP_PAGE: &str = "40";
/// How often a processing upload is asked about.
const PROCESSING_POLL: Duration = Duration::from_millis(500);

impl HttpPlatforms {
    /// Uploads the media, then creates the status (a thread's reply when `reply_to`).
    pub(crate) async fn publish_mastodon(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
        reply_to: Option<&str>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut media_ids = Vec::with_capacity(media.len());
        for upload in media {
            media_ids.push(self.upload_mastodon(account, upload).await?);
        }
        let mut body = serde_json::json!({ "status": account.text, "visibility": "public" });
        if !media_ids.is_empty() {
            body["media_ids"] = serde_json::json!(media_ids);
        }
        if let Some(parent) = reply_to {
            body["in_reply_to_id"] = serde_json::json!(parent);
        }
        let response = self
            .http
            .post(self.endpoints.mastodon_url("/api/v1/statuses"))
            .bearer_auth(account.token.expose_secret())
            .header("Idempotency-Key", account.idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        Answer::to_post(response)
            .await?
            .published("Mastodon", |b| b["id"].as_str(), mastodon_error)
    }

    /// One file; a video or GIF answers 202 while Mastodon processes it, and a status may
    /// only carry it once processed, so this waits (within the upload's own time limit).
    async fn upload_mastodon(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let timeout = self.upload_timeout(upload.attachment);
        let description = upload.attachment.alt_text.clone();
        let mut form = Form::new().part("file", media_part(upload)?);
        if let Some(description) = description {
            form = form.text("description", description);
        }
        let response = self
            .http
            .post(self.endpoints.mastodon_url("/api/v2/media"))
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(timeout)
            .send()
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        let processing = answer.status == StatusCode::ACCEPTED;
        let id = answer.uploaded("Mastodon", |b| b["id"].as_str(), mastodon_error)?;
        if processing {
            self.until_processed(account, &id, timeout).await?;
        }
        Ok(id)
    }

    /// Asks about an upload until it is processed (200; 206 while processing).
    async fn until_processed(
        &self,
        account: Account<'_>,
        id: &str,
        within: Duration,
    ) -> Result<(), PlatformError> {
        let url = self
            .endpoints
            .mastodon_url(&format!("/api/v1/media/{}", engagement::urlencode_path(id)));
        let started = std::time::Instant::now();
        loop {
            let response = self
                .http
                .get(&url)
                .bearer_auth(account.token.expose_secret())
                .send()
                .await
                .map_err(upload_transport_error)?;
            let answer = Answer::to_upload(response).await?;
            answer.upload_ok(mastodon_error)?;
            if answer.status == StatusCode::OK {
                return Ok(());
            }
            if started.elapsed() + PROCESSING_POLL > within {
                return Err(PlatformError::Transient {
                    message: "Mastodon was still processing the media upload; it is sent again"
                        .into(),
                    code: None,
                    retry_after: None,
                });
            }
            tokio::time::sleep(PROCESSING_POLL).await;
        }
    }

    /// The account's newest statuses as (id, text, created): its own posts when `reply_to` is
    /// `None`, else its answers to that status.
    pub(crate) async fn mastodon_statuses(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let url = self.endpoints.mastodon_url(&format!(
            "/api/v1/accounts/{}/statuses",
            engagement::urlencode_path(req.external_id)
        ));
        let mut query = vec![("limit", LOOKUP_PAGE.to_owned())];
        if req.reply_to.is_none() {
            query.push(("exclude_replies", "true".to_owned()));
        }
        let body = self.lookup_listing(req, url, &query).await?;
        let statuses = body.as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(statuses
            .iter()
            .filter(|s| s["in_reply_to_id"].as_str() == req.reply_to)
            .filter_map(|s| {
                Some((
                    s["id"].as_str()?.to_owned(),
                    status_text(s["content"].as_str()?),
                    s["created_at"]
                        .as_str()
                        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
                ))
            })
            .collect())
    }

    /// Who the token is: its account's `id` and `display_name` (or `username`).
    pub(crate) async fn mastodon_ownership(
        &self,
        token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError> {
        let url = self
            .endpoints
            .mastodon_url("/api/v1/accounts/verify_credentials");
        let me = self.identity_call(Platform::Mastodon, url, token).await?;
        let name = if me["display_name"].as_str().is_some_and(|n| !n.is_empty()) {
            &me["display_name"]
        } else {
            &me["username"]
        };
        Ok(owners::same_id(&me["id"], name, external_id))
    }

    /// The account's statuses newest first: `since_id` the newest a previous run stored,
    /// `max_id` the page's cursor (the oldest status of the page before).
    pub(crate) async fn mastodon_timeline(
        &self,
        account: &ConnectedAccount,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let url = self.endpoints.mastodon_url(&format!(
            "/api/v1/accounts/{}/statuses",
            engagement::urlencode_path(&account.external_id)
        ));
        let limit = page_size.clamp(1, 40);
        // A boost is someone else's status: not the account's post.
        let mut query = vec![
            ("limit", limit.to_string()),
            ("exclude_reblogs", "true".to_owned()),
        ];
        if let Some(since) = &position.since {
            query.push(("since_id", since.clone()));
        }
        if let Some(cursor) = &position.cursor {
            query.push(("max_id", cursor.clone()));
        }
        let (headers, body) =
            timelines::read(self.http.get(url).query(&query), account, mastodon_error).await?;
        let mut items = timelines::raw_items(&body)?;
        // A status's text is HTML: the item keeps it, and gains the text as written.
        for item in &mut items {
            if let Some(html) = item.raw["content"].as_str() {
                item.raw["text"] = Value::String(status_text(html));
            }
        }
        let full = items.len() >= limit as usize;
        Ok(Page {
            next: full
                .then(|| items.last().and_then(|i| i.platform_id.clone()))
                .flatten(),
            newest: items.first().and_then(|i| i.platform_id.clone()),
            items,
            rate: rate_signal(&headers),
        })
    }
}

/// A status's text as the author wrote it, read back from Mastodon's HTML (`<p>` paragraphs,
/// `<br />` line breaks, links and mentions as `<a>` whose text is the URL or `@name`, the
/// long part of a URL in an invisible `<span>`): tags dropped, entities decoded. Written by
/// hand: only these few tags and the five entities plus numeric ones occur in `content`.
pub(crate) fn status_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        if tag.starts_with("br") {
            out.push('\n');
        } else if tag == "/p" {
            out.push_str("\n\n");
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(&decode_entities(rest));
    out.trim_end().to_owned()
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Mastodon's refusal, classified.
pub(crate) fn mastodon_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let message = format!(
        "Mastodon answered {}{what}: {}",
        status.as_u16(),
        body["error"].as_str().unwrap_or("no detail given")
    );
    by_status(status, headers, message, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_as_written_from_mastodons_own_html() {
        // As Mastodon renders a remote mention and a long link (its hidden spans included).
        let html = concat!(
            r#"<p>Thanks <span class="h-card" translate="no"><a href="https://example.social/@ada" "#,
            r#"class="u-url mention">@<span>ada</span></a></span> &amp; team!</p><p>See "#,
            r#"<a href="https://example.com/a/very/long/path" target="_blank" rel="nofollow noopener">"#,
            r#"<span class="invisible">https://</span><span class="ellipsis">example.com/a/very/lo</span>"#,
            r#"<span class="invisible">ng/path</span></a><br />bye</p>"#
        );
        let read = status_text(html);
        assert_eq!(
            read,
            "Thanks @ada & team!\n\nSee https://example.com/a/very/long/path\nbye"
        );
        let sent =
            "Thanks @ada@example.social & team!\n\nSee https://example.com/a/very/long/path\nbye";
        assert!(same_text(Platform::Mastodon, &read, sent));
        assert!(!same_text(Platform::Mastodon, &read, "Thanks @ada & team!"));
        assert!(
            !same_text(Platform::X, &read, sent),
            "only Mastodon reads mentions so"
        );
    }
}
