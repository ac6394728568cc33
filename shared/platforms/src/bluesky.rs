//! Bluesky: the AT Protocol's XRPC on the account's PDS (`HERALD_BLUESKY_API_URL`, e.g.
//! `https://bsky.social`).
//!
//! | step | call |
//! |---|---|
//! | connect | `com.atproto.server.createSession` with the handle (or DID) and an app password; the session's tokens are stored, never the password |
//! | refresh | `com.atproto.server.refreshSession` with the refresh JWT (both tokens rotate) |
//! | images | `com.atproto.repo.uploadBlob` (the raw bytes), then `app.bsky.embed.images` |
//! | post, thread reply | `com.atproto.repo.createRecord` of an `app.bsky.feed.post`, under a record key Herald chose; a reply names its root and parent (`getRecord` for their CIDs) |
//! | lookup after a lost answer | `com.atproto.repo.getRecord` of that record key |
//! | timeline | `com.atproto.repo.listRecords` (newest record key first, `cursor`) |
//! | engagement | `app.bsky.feed.getPosts`: likes, replies, reposts and quotes |
//!
//! The record key is a TID made from the step's idempotency key and the post's due time, so
//! every attempt at a step names the same record: a repeat cannot make a second post (the PDS
//! refuses a key its repo holds), and the lookup reads exactly that record. Its time part is
//! the due time (a millisecond per thread part), so Herald's records sort among the account's
//! others as they would; a post that went out late sorts early, so a timeline run reads an
//! hour past the newest record it stored.
//!
//! Errors are XRPC's `{"error", "message"}`: 401 and a 400 `ExpiredToken`/`InvalidToken` a
//! refused token, 429 rate limited (`ratelimit-reset`, epoch seconds), 5xx transient, other
//! 400s permanent.

use super::*;
use herald_domain::ingest::{Page, Position, RawItem};
use herald_domain::model::Account as ConnectedAccount;
use herald_domain::publishing::platform::Ownership;
use herald_domain::secrets::token_refresh::RefreshedTokens;

const POST: &str = "app.bsky.feed.post";
/// 2015-01-01T00:00:00Z in microseconds: no record key's time is earlier.
const TID_EPOCH_US: i64 = 1_420_070_400_000_000;
/// How long an access JWT lives when its `exp` cannot be read (the PDS's two hours).
const DEFAULT_ACCESS_TTL: time::Duration = time::Duration::hours(2);

impl HttpPlatforms {
    fn xrpc(&self, nsid: &str) -> String {
        self.endpoints.bluesky_url(&format!("/xrpc/{nsid}"))
    }

    /// Uploads the images, then creates the post (a thread's reply when `reply_to`) under
    /// the step's record key. A refused create whose record is there after all (a repeat
    /// after a lost answer: the PDS refuses the key it holds) is that post.
    pub(crate) async fn publish_bluesky(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
        reply_to: Option<&str>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut images = Vec::with_capacity(media.len());
        for upload in media {
            // Alt text is item 6's per-platform options; the lexicon requires the field.
            images.push({
                let alt = upload.attachment.alt_text.clone().unwrap_or_default();
                serde_json::json!({"image": self.upload_blob(account, upload).await?, "alt": alt})
            });
        }
        let mut record = serde_json::json!({
            "$type": POST,
            "text": account.text,
            "createdAt": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        });
        let facets = link_facets(account.text);
        if !facets.is_empty() {
            record["facets"] = Value::Array(facets);
        }
        if !images.is_empty() {
            record["embed"] =
                serde_json::json!({"$type": "app.bsky.embed.images", "images": images});
        }
        if let Some(parent) = reply_to {
            record["reply"] = self.reply_refs(account, parent).await?;
        }
        let rkey = record_key(account.idempotency_key, account.due_at);
        let body = serde_json::json!({
            "repo": account.external_id,
            "collection": POST,
            "rkey": rkey,
            "record": record,
        });
        let response = self
            .http
            .post(self.xrpc("com.atproto.repo.createRecord"))
            .bearer_auth(account.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let created = Answer::to_post(response).await?.published(
            "Bluesky",
            |b| b["uri"].as_str(),
            bluesky_error,
        );
        let Err(e) = created else {
            return created;
        };
        use herald_domain::model::FailureKind;
        if !matches!(e.kind(), FailureKind::Permanent | FailureKind::Transient) {
            return Err(e);
        }
        // The refusal may be the PDS holding the key already (a repeat after a lost answer):
        // the record under it says. A read that fails leaves the post unknown, never failed.
        match self.record(account.token, account.external_id, &rkey).await {
            Ok(Some(found)) if found["value"]["text"] == account.text => Ok(PublishedPost::new(
                found["uri"].as_str().unwrap_or_default(),
            )),
            Ok(_) => Err(e),
            Err(read) => Err(PlatformError::Ambiguous {
                message: format!(
                    "{} (and reading the record back failed: {})",
                    e.message(),
                    read.message()
                ),
            }),
        }
    }

    async fn upload_blob(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<Value, PlatformError> {
        let a = upload.attachment;
        let content = upload.into_content()?;
        let response = self
            .http
            .post(self.xrpc("com.atproto.repo.uploadBlob"))
            .bearer_auth(account.token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, a.media_type.mime())
            .header(reqwest::header::CONTENT_LENGTH, content.size)
            .body(reqwest::Body::wrap_stream(content.chunks))
            .timeout(self.upload_timeout(a))
            .send()
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        answer.upload_ok(bluesky_error)?;
        match &answer.body["blob"] {
            Value::Object(_) => Ok(answer.body["blob"].clone()),
            _ => Err(upload_without_id("Bluesky")),
        }
    }

    /// A reply's `{root, parent}`: the parent's CID, and its own root (or itself).
    async fn reply_refs(&self, account: Account<'_>, parent: &str) -> Result<Value, PlatformError> {
        let Some((repo, rkey)) = split_post_uri(parent) else {
            return Err(PlatformError::Permanent {
                message: format!("{parent} is not a Bluesky post's AT URI"),
                code: None,
            });
        };
        let found = self
            .record(account.token, repo, rkey)
            .await?
            .ok_or_else(|| PlatformError::Permanent {
                message: format!("Bluesky has no post {parent} to answer"),
                code: Some("RecordNotFound".into()),
            })?;
        let parent_ref = serde_json::json!({"uri": found["uri"], "cid": found["cid"]});
        let root = match &found["value"]["reply"]["root"] {
            Value::Object(_) => found["value"]["reply"]["root"].clone(),
            _ => parent_ref.clone(),
        };
        Ok(serde_json::json!({"root": root, "parent": parent_ref}))
    }

    /// One record of a repo's posts: `{uri, cid, value}`, or `None` when it is not there.
    async fn record(
        &self,
        token: &SecretString,
        repo: &str,
        rkey: &str,
    ) -> Result<Option<Value>, PlatformError> {
        let response = self
            .http
            .get(self.xrpc("com.atproto.repo.getRecord"))
            .bearer_auth(token.expose_secret())
            .query(&[("repo", repo), ("collection", POST), ("rkey", rkey)])
            .send()
            .await
            .map_err(lookup_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.map_err(|_| lookup_failed())?;
        if status.is_success() {
            return Ok(Some(body));
        }
        if body["error"] == "RecordNotFound" {
            return Ok(None);
        }
        Err(
            match bluesky_error(status, &headers, &body, " to the lookup") {
                e @ (PlatformError::Auth { .. } | PlatformError::RateLimited { .. }) => e,
                _ => lookup_failed(),
            },
        )
    }

    /// The step's record, read by the key its publish named it with.
    pub(crate) async fn find_bluesky(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let rkey = record_key(req.idempotency_key, req.due_at);
        let found = self
            .record(req.access_token, req.external_id, &rkey)
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|r| {
                Some((
                    r["uri"].as_str()?.to_owned(),
                    r["value"]["text"].as_str()?.to_owned(),
                    // Its key names it: it is the step's whenever it was created.
                    None,
                ))
            })
            .collect())
    }

    /// Signs in with the handle (or DID) and an app password; the account is the session's
    /// DID, and the session's tokens are what Herald keeps.
    pub(crate) async fn bluesky_ownership(
        &self,
        password: &SecretString,
        identifier: &str,
    ) -> Result<Ownership, PlatformError> {
        let body =
            serde_json::json!({"identifier": identifier, "password": password.expose_secret()});
        let session = self
            .session_call("com.atproto.server.createSession", None, Some(&body))
            .await?;
        let did = session["did"].as_str().unwrap_or_default().to_owned();
        let handle = session["handle"].as_str().map(str::to_owned);
        let owns = !did.is_empty()
            && (did == identifier
                || handle
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(identifier)));
        Ok(Ownership {
            owns,
            actual_id: did,
            name: handle,
            issued: Some(session_tokens(&session)?),
        })
    }

    /// A new session pair for the refresh JWT (which is spent).
    pub(crate) async fn bluesky_refresh(
        &self,
        refresh_token: &SecretString,
    ) -> Result<RefreshedTokens, PlatformError> {
        let session = self
            .session_call(
                "com.atproto.server.refreshSession",
                Some(refresh_token),
                None,
            )
            .await?;
        session_tokens(&session)
    }

    async fn session_call(
        &self,
        nsid: &str,
        bearer: Option<&SecretString>,
        body: Option<&Value>,
    ) -> Result<Value, PlatformError> {
        let mut request = self.http.post(self.xrpc(nsid));
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| PlatformError::Transient {
            message: format!(
                "Bluesky could not be asked for a session: {}",
                e.without_url()
            ),
            code: None,
            retry_after: None,
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(bluesky_error(
            status,
            &headers,
            &body,
            " to the session request",
        ))
    }

    /// The account's posts, newest record key first; `cursor` the last key of the page before.
    pub(crate) async fn bluesky_timeline(
        &self,
        account: &ConnectedAccount,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let limit = page_size.clamp(1, 100);
        let mut query = vec![
            ("repo", account.external_id.clone()),
            ("collection", POST.to_owned()),
            ("limit", limit.to_string()),
        ];
        if let Some(cursor) = &position.cursor {
            query.push(("cursor", cursor.clone()));
        }
        let (headers, body) = timelines::read(
            self.http
                .get(self.xrpc("com.atproto.repo.listRecords"))
                .query(&query),
            account,
            bluesky_error,
        )
        .await?;
        let records = body["records"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let all: Vec<RawItem> = records
            .iter()
            .map(|r| {
                let mut raw = r["value"].clone();
                if raw.is_object() {
                    raw["id"] = r["uri"].clone();
                }
                RawItem {
                    platform_id: r["uri"].as_str().map(str::to_owned),
                    raw,
                }
            })
            .collect();
        let newest = all.first().and_then(|i| i.platform_id.clone());
        let (items, reached) = look_back(all, position.since.as_deref());
        let full = records.len() >= limit as usize;
        let next = (!reached && full)
            .then(|| body["cursor"].as_str().map(str::to_owned))
            .flatten();
        Ok(Page {
            items,
            next,
            newest,
            rate: rate_signal(&headers),
        })
    }
}

/// How far before the newest stored record a run reads again. Records are listed by key, and
/// Herald's keys carry the post's due time, not when it went out: a post published late (a
/// retry, a pause) sorts before records made since. Items are keyed, so a record read again
/// is written over, not added.
const LOOK_BACK: time::Duration = time::Duration::hours(1);

/// Keeps the page's records down to an hour before `since`'s key (newest first); `true` when
/// the page went past that (the run ends there).
fn look_back(items: Vec<RawItem>, since: Option<&str>) -> (Vec<RawItem>, bool) {
    let key_micros =
        |uri: Option<&str>| uri.and_then(|u| u.rsplit('/').next()).and_then(tid_micros);
    let Some(since_micros) = key_micros(since) else {
        return timelines::until_since(items, since);
    };
    let cutoff = since_micros - LOOK_BACK.whole_microseconds() as i64;
    match items
        .iter()
        .position(|i| key_micros(i.platform_id.as_deref()).is_some_and(|m| m < cutoff))
    {
        Some(at) => (items.into_iter().take(at).collect(), true),
        None => (items, false),
    }
}

/// `at://<repo>/app.bsky.feed.post/<rkey>` as (repo, rkey).
fn split_post_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("at://")?;
    let (repo, rest) = rest.split_once('/')?;
    let rkey = rest.strip_prefix(POST)?.strip_prefix('/')?;
    (!repo.is_empty() && !rkey.is_empty() && !rkey.contains('/')).then_some((repo, rkey))
}

/// A session answer's tokens; the access JWT's `exp` says when it stops working.
fn session_tokens(session: &Value) -> Result<RefreshedTokens, PlatformError> {
    let (Some(access), Some(refresh)) = (
        session["accessJwt"].as_str(),
        session["refreshJwt"].as_str(),
    ) else {
        return Err(PlatformError::Transient {
            message: "Bluesky answered a session request without its tokens".into(),
            code: None,
            retry_after: None,
        });
    };
    let expires_in = jwt_expiry(access)
        .map(|exp| exp - OffsetDateTime::now_utc())
        .filter(|left| left.is_positive())
        .unwrap_or(DEFAULT_ACCESS_TTL);
    Ok(RefreshedTokens {
        access_token: SecretString::from(access.to_owned()),
        refresh_token: Some(SecretString::from(refresh.to_owned())),
        expires_in: Some(expires_in),
    })
}

/// A JWT's `exp`, read without checking its signature (Herald only needs to know when to
/// refresh it; the PDS checks it).
fn jwt_expiry(jwt: &str) -> Option<OffsetDateTime> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    OffsetDateTime::from_unix_timestamp(claims["exp"].as_i64()?).ok()
}

/// The step's record key: a TID (13 base32-sortable characters of a 64-bit number: a zero
/// bit, 53 bits of microseconds, 10 bits of clock id) whose microseconds are the step's time
/// to the millisecond plus a part of the key's hash, and whose clock id is another part. Written
/// by hand: the TID format is a few lines and no crate makes one from chosen parts.
pub(crate) fn record_key(idempotency_key: &str, due_at: OffsetDateTime) -> String {
    let hash = herald_domain::secrets::secret::sha256_hex(&[idempotency_key.as_bytes()]);
    let h = u64::from_str_radix(&hash[..16], 16).unwrap_or(0);
    let millis = i64::try_from(due_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let micros = millis.saturating_mul(1_000).max(TID_EPOCH_US) + (h % 1_000) as i64;
    let value = ((micros as u64 & ((1 << 53) - 1)) << 10) | ((h >> 32) & 1023);
    (0..13)
        .rev()
        .map(|i| S32[((value >> (5 * i)) & 31) as usize] as char)
        .collect()
}

const S32: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// The microseconds a TID record key carries; `None` for another kind of key.
fn tid_micros(rkey: &str) -> Option<i64> {
    if rkey.len() != 13 {
        return None;
    }
    let mut value: u64 = 0;
    for c in rkey.bytes() {
        value = (value << 5) | S32.iter().position(|s| *s == c)? as u64;
    }
    i64::try_from(value >> 10).ok()
}

/// A link facet for every `http(s)://` URL, so it is a link on Bluesky (byte offsets into
/// the UTF-8 text, as the rich-text lexicon says).
fn link_facets(text: &str) -> Vec<Value> {
    herald_domain::publishing::text::extract_urls(text)
        .into_iter()
        .filter(|r| {
            let url = &text[r.clone()];
            url.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
                || url
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        })
        .map(|r| {
            serde_json::json!({
                "index": {"byteStart": r.start, "byteEnd": r.end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": &text[r]}],
            })
        })
        .collect()
}

/// Bluesky's refusal, classified.
pub(crate) fn bluesky_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    what: &str,
) -> PlatformError {
    let name = body["error"].as_str().unwrap_or_default();
    let message = format!(
        "Bluesky answered {}{what}: {}",
        status.as_u16(),
        body["message"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no detail given")
    );
    let code = (!name.is_empty()).then(|| name.to_owned());
    // XRPC answers an expired or unknown session with 400, not 401.
    if status == StatusCode::BAD_REQUEST && matches!(name, "ExpiredToken" | "InvalidToken") {
        return PlatformError::Auth { message, code };
    }
    by_status(status, headers, message, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_key_is_a_tid_stable_for_its_step_and_sorted_by_due_time() {
        let due = time::macros::datetime!(2026-12-05 20:00 UTC);
        let key = record_key("herald-post_1-acc_1-0", due);
        assert_eq!(key.len(), 13);
        assert!(b"234567abcdefghij".contains(&key.as_bytes()[0]), "{key}");
        assert_eq!(key, record_key("herald-post_1-acc_1-0", due), "stable");
        assert_ne!(
            key,
            record_key("herald-post_1-acc_1-1", due),
            "one per step"
        );
        let later = record_key("herald-post_2-acc_1-0", due + time::Duration::seconds(2));
        assert!(later > key, "a later due time sorts after: {later} {key}");
    }

    #[test]
    fn a_threads_parts_sort_in_order_and_keys_read_back_as_their_time() {
        let due = time::macros::datetime!(2026-12-05 20:00 UTC);
        let ms = time::Duration::milliseconds;
        let parts: Vec<String> = (0..24)
            .map(|step| record_key(&format!("herald-post_1-acc_1-{step}"), due + ms(step)))
            .collect();
        let mut sorted = parts.clone();
        sorted.sort();
        assert_eq!(parts, sorted);
        let micros = tid_micros(&parts[3]).unwrap();
        let at = due.unix_timestamp() * 1_000_000 + 3_000;
        assert!((at..at + 1_000).contains(&micros), "{micros} {at}");
        assert_eq!(tid_micros("not-a-tid"), None);
    }

    #[test]
    fn a_run_reads_an_hour_past_the_newest_stored_record() {
        let due = time::macros::datetime!(2026-12-05 20:00 UTC);
        let uri = |minutes_before: i64| {
            let key = record_key(
                &format!("k{minutes_before}"),
                due - time::Duration::minutes(minutes_before),
            );
            format!("at://did:plc:a/app.bsky.feed.post/{key}")
        };
        let item = |uri: String| RawItem {
            platform_id: Some(uri),
            raw: Value::Null,
        };
        let page: Vec<RawItem> = [0, 10, 30, 59, 61, 90]
            .into_iter()
            .map(|m| item(uri(m)))
            .collect();
        let (kept, reached) = look_back(page, Some(&uri(0)));
        assert!(reached);
        assert_eq!(kept.len(), 4, "down to 59 minutes before, not 61");
        let (all, reached) = look_back(vec![item(uri(5))], None);
        assert_eq!((all.len(), reached), (1, false));
    }

    #[test]
    fn urls_become_link_facets_at_their_byte_offsets() {
        let facets = link_facets("café https://example.com/a and example.org");
        assert_eq!(facets.len(), 1, "a bare domain is left as text");
        assert_eq!(
            facets[0]["index"],
            serde_json::json!({"byteStart": 6, "byteEnd": 27})
        );
        assert_eq!(facets[0]["features"][0]["uri"], "https://example.com/a");
    }

    #[test]
    fn a_post_uri_splits_into_its_repo_and_key() {
        assert_eq!(
            split_post_uri("at://did:plc:abc/app.bsky.feed.post/3kabc"),
            Some(("did:plc:abc", "3kabc"))
        );
        assert_eq!(
            split_post_uri("at://did:plc:abc/app.bsky.feed.like/3k"),
            None
        );
        assert_eq!(split_post_uri("https://bsky.app"), None);
    }

    #[test]
    fn a_jwts_expiry_is_read_from_its_claims() {
        use base64::Engine;
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp": 1800000000}"#);
        let exp = jwt_expiry(&format!("e30.{claims}.sig")).unwrap();
        assert_eq!(exp.unix_timestamp(), 1_800_000_000);
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }
}
