"""Fake X, Facebook, LinkedIn, Mastodon, Bluesky and SMS-provider APIs for Herald's local
end-to-end tests.

One HTTP server (Python 3.11, standard library only) speaks each platform's request and
response shapes under its own path prefix, keeps everything it receives in memory, and
injects faults on demand:

    /x          X API v2            POST /x/2/tweets, GET /x/2/users/{id}/tweets,
                                    POST /x/2/media/upload (multipart `media`, `media_category`),
                                    POST /x/2/oauth2/token (grant_type=refresh_token; rotates it;
                                    or authorization_code, with PKCE: authorize.py)
                                    GET|POST /x/i/oauth2/authorize (the consent page and answer)
                                    GET /x/2/users/me (who the token is)
    /facebook   Graph API           POST /facebook/v21.0/{page}/feed, GET .../{page}/feed|posts,
                                    POST .../{page}/photos (multipart `source`, published=false),
                                    POST .../{page}/videos (multipart `source`, `description`:
                                    the video is the post)
                                    GET .../me (a Page token's Page)
                                    (any /vNN.N version segment, or none)
    /linkedin   LinkedIn REST       POST /linkedin/rest/posts, GET /linkedin/rest/posts?q=author,
                                    POST /linkedin/rest/images|documents?action=initializeUpload,
                                    then PUT the bytes to the `uploadUrl` it returns,
                                    POST /linkedin/oauth/v2/accessToken (grant_type=refresh_token)
                                    GET /linkedin/v2/userinfo, GET /linkedin/rest/organizationAcls
                                    (the member, the organisations it administers)
    /mastodon   Mastodon REST API   POST /mastodon/api/v1/statuses (`Idempotency-Key` honoured),
                                    GET|DELETE .../api/v1/statuses/{id},
                                    GET .../api/v1/accounts/{id}/statuses (`Link` paging),
                                    GET .../api/v1/accounts/verify_credentials (who the token is),
                                    POST .../api/v2/media (multipart `file`), GET .../api/v1/media/{id}
                                    (the instance's base URL is `<fake>/mastodon`; mastodon.py)
    /bluesky    a Bluesky PDS       XRPC under /bluesky/xrpc/: com.atproto.server.createSession,
                (AT Protocol)       refreshSession, getSession; com.atproto.repo.createRecord
                                    (a client-chosen `rkey` that exists is refused: no
                                    duplicate), getRecord, listRecords, deleteRecord,
                                    uploadBlob; app.bsky.feed.getPosts (engagement counts);
                                    accounts from `/_admin/bluesky/accounts` (admin.py)
    /sms        a generic provider  POST /sms/messages (E.164 `to`, optional `client_ref`; exact
                                    GSM-7/UCS-2 `segments`; a per-sender messages-per-second
                                    limit: 429 with `Retry-After: 1`), GET /sms/messages?client_ref=
                                    (the lookup after a lost answer); signed delivery receipts
                                    and inbound messages posted to a webhook; settings, inbound
                                    and listings under /_admin/sms/ (sms.py, sms_delivery.py)
    /sinks      Slack-style alert and outbound-webhook receivers: POST /sinks/{name}
    /_admin     assertions and fault injection (see the handlers in admin.py),
                and timeline seeding for ingestion (`/_admin/timeline`, admin.py);
                GET .../{page}/insights (Page insights, `/_admin/insights`, facebook.py)

Run it with

    python infra/fake_platforms --host 127.0.0.1 --port 4580

(the package's folder; `python -m fake_platforms` with infra/ on the path works too;
`--port 0` picks a free port). Once bound it prints exactly one line,
`listening on http://HOST:PORT`, to stdout; every request is logged to stderr as one JSON line
(method, path without the query string, status, platform). Tokens, Authorization headers and
message contents are never logged. From Python (e.g. in tests) use `make_server(host, port)`
and call `serve_forever()` on the result in a thread.

Behaviour shared by the platforms, in the order a create request meets it:

1. fault rules (`POST /_admin/faults`): the first rule that matches and fires applies; its
   latency is slept, then a status fault answers without creating anything;
2. the token: missing, or starting with `revoked`, gives the platform's auth error;
3. the account (X and Mastodon: the user the token belongs to; Facebook: the page in the
   path; LinkedIn: the id at the end of the author URN; SMS: the `from` number) and its
   fixed-window rate limit: over the limit gives the platform's rate-limit answer;
4. content validation (SMS: then the sender's messages-per-second limit, which stores
   nothing when full), then the post is created and recorded; an `ambiguous` fault then
   drops the connection instead of answering.

Only requests that get past step 3 count toward the rate-limit window (successful creates,
ambiguous ones included, and validation errors for a known account); injected status
faults, auth failures and the refusals for the limit itself do not. Mastodon also has a
window every request with a valid token counts toward (`mastodon-api` in `/_admin/limits`),
and answers a create whose `Idempotency-Key` its account used within the hour with the status
that key created (mastodon_api.py).

Answers (an X reply with `reply.in_reply_to_tweet_id`, a Facebook comment `POST /{post}/comments`,
a LinkedIn comment `POST /rest/socialActions/{urn}/comments`) are creates too: they meet the
rules whose `endpoints` is `create`, `answer` (answers only) or `all`, are refused when what they
answer does not exist, and are listed under their parent (X's timeline shows a reply with its
`referenced_tweets`; a comment is never in a feed or a post listing).

Media uploads meet the fault rules whose `endpoints` is `upload` or `all` and the token check,
but no rate limit; an `ambiguous` fault stores the upload and drops the answer. A post may
only refer to media its account uploaded (and, on LinkedIn, whose bytes arrived); what was
uploaded (size, SHA-256, content type) is listed by `GET /_admin/media`, and each post lists
the media it refers to.

The package, by module (each imports only the ones above it; the package imports them all):

    protocol.py   Request, Reply, Drop, BadRequest, multipart bodies, cursors, time formats
    state.py      State (posts, media, fault rules, tokens, limits, sinks, insights), FaultRule
                  and its parsing, the engagement counts
    base.py       the Platform base class and the create/upload/listing/OAuth-refresh flow
    x.py, facebook.py, linkedin.py, sms.py, mastodon.py
                  each platform's Platform subclass and endpoints (listings, lookups, insights)
    sms_state.py (below state.py: the SMS provider's settings, per-second windows, receipt log),
                  sms_delivery.py (its signed receipts and inbound messages, its admin endpoints)
    mastodon_api.py
                  Mastodon's endpoints (its model is mastodon.py)
    bluesky_accounts.py, bluesky_syntax.py (below state.py: accounts and sessions; TIDs,
                  URIs, CIDs, graphemes, the post lexicon), bluesky.py (the platform, its gate,
                  sessions), bluesky_repo.py (records, blobs, getPosts)
    admin.py      sinks and the /_admin API (faults, tokens, OAuth, limits, seeding)
    routes.py     the route table
    server.py     the HTTP server and its JSON request log; `make_server`
    __main__.py   the command line
"""

from __future__ import annotations

from fake_platforms.base import OAUTH_EXPIRES_IN, Draft, Platform
from fake_platforms.bluesky import BLUESKY, BlueskyPlatform
from fake_platforms.facebook import FACEBOOK, FacebookPlatform
from fake_platforms.linkedin import LINKEDIN, LinkedInPlatform
from fake_platforms.mastodon import MASTODON, MastodonPlatform
from fake_platforms.protocol import (
    DROP,
    MAX_BODY_BYTES,
    MAX_UPLOAD_BYTES,
    BadRequest,
    Drop,
    FormPart,
    Outcome,
    Reply,
    Request,
    parse_multipart,
)
from fake_platforms.routes import ROUTES, Route, resolve
from fake_platforms.server import FakePlatformsServer, Handler, JsonLog, make_server
from fake_platforms.sms import SMS, SmsPlatform
from fake_platforms.state import (
    DEFAULT_LIMITS,
    ENGAGEMENT,
    PLATFORMS,
    FaultRule,
    Media,
    Post,
    State,
    parse_fault_rule,
)
from fake_platforms.x import X, XPlatform

__all__ = [
    "BLUESKY",
    "DEFAULT_LIMITS",
    "DROP",
    "ENGAGEMENT",
    "FACEBOOK",
    "LINKEDIN",
    "MASTODON",
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_BYTES",
    "OAUTH_EXPIRES_IN",
    "PLATFORMS",
    "ROUTES",
    "SMS",
    "X",
    "BadRequest",
    "BlueskyPlatform",
    "Draft",
    "Drop",
    "FacebookPlatform",
    "FakePlatformsServer",
    "FaultRule",
    "FormPart",
    "Handler",
    "JsonLog",
    "LinkedInPlatform",
    "MastodonPlatform",
    "Media",
    "Outcome",
    "Platform",
    "Post",
    "Reply",
    "Request",
    "Route",
    "SmsPlatform",
    "State",
    "XPlatform",
    "make_server",
    "parse_fault_rule",
    "parse_multipart",
    "resolve",
]
