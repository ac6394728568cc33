"""The route table: which handler answers a method and path (the first match wins, in order)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fake_platforms.admin import (
    admin_add_fault,
    admin_uploads,
    admin_bluesky_accounts,
    admin_bluesky_add_account,
    admin_bluesky_expire,
    admin_bluesky_sessions,
    admin_bluesky_settings,
    admin_clear_faults,
    admin_faults,
    admin_health,
    admin_insights,
    admin_limits,
    admin_media,
    admin_oauth,
    admin_oauth_client,
    admin_oauth_view,
    admin_posts,
    admin_remove_fault,
    admin_reset,
    admin_seed_insights,
    admin_seed_timeline,
    admin_set_limit,
    admin_set_metrics,
    admin_sink_requests,
    admin_sink_script,
    admin_timeline,
    admin_tokens,
    sink_receive,
)
from fake_platforms.authorize import (
    facebook_access_token,
    facebook_dialog_decision,
    facebook_dialog_page,
    facebook_my_pages,
    linkedin_authorization_decision,
    linkedin_authorization_page,
    x_authorize_decision,
    x_authorize_page,
)
from fake_platforms.bluesky import create_session, get_session, refresh_session
from fake_platforms.bluesky_repo import (
    create_record,
    delete_record,
    get_posts,
    get_record,
    list_records,
    upload_blob,
)
from fake_platforms.facebook import (
    facebook_create_comment,
    facebook_create_post,
    facebook_delete_object,
    facebook_edit_object,
    facebook_list_comments,
    facebook_create_video,
    facebook_list_posts,
    facebook_me,
    facebook_page_insights,
    facebook_post_fields,
    facebook_upload_photo,
)
from fake_platforms.linkedin import (
    linkedin_create_comment,
    linkedin_create_post,
    linkedin_delete_comment,
    linkedin_delete_post,
    linkedin_update_post,
    linkedin_list_comments,
    linkedin_initialize_upload,
    linkedin_list_posts,
    linkedin_oauth_token,
    linkedin_organization_acls,
    linkedin_social_actions,
    linkedin_upload_bytes,
    linkedin_userinfo,
)
from fake_platforms.instagram import (
    admin_instagram_containers,
    instagram_create_comment,
    instagram_create_container,
    instagram_list_comments,
    instagram_list_media,
    instagram_me,
    instagram_object,
    instagram_publish,
)
from fake_platforms.mastodon_api import (
    mastodon_account_statuses,
    mastodon_create_status,
    mastodon_delete_status,
    mastodon_edit_status,
    mastodon_get_media,
    mastodon_get_status,
    mastodon_upload_media,
    mastodon_verify_credentials,
)
from fake_platforms.protocol import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, Outcome, Request
from fake_platforms.sms import sms_lookup, sms_send
from fake_platforms.sms_delivery import (
    admin_sms_inbound,
    admin_sms_messages,
    admin_sms_receipts,
    admin_sms_settings,
    admin_sms_settings_view,
)
from fake_platforms.state import State
from fake_platforms.x import (
    x_create_tweet,
    x_delete_tweet,
    x_media_status,
    x_media_metadata,
    x_media_upload,
    x_oauth_token,
    x_tweets_lookup,
    x_user_tweets,
    x_users_me,
)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[State, Request], Outcome]
    area: str  # a platform, "admin" or "sink", for the log
    max_body: int = MAX_BODY_BYTES


def _route(
    method: str,
    pattern: str,
    handler: Callable[[State, Request], Outcome],
    area: str,
    max_body: int = MAX_BODY_BYTES,
) -> Route:
    return Route(method, re.compile(pattern), handler, area, max_body)


_GRAPH = r"/facebook(?:/v\d+(?:\.\d+)?)?/(?P<page>[^/]+)"
_NAME = r"(?P<name>[A-Za-z0-9._-]+)"
_MASTODON = r"/mastodon/api"
_INSTAGRAM = r"/instagram(?:/v\d+(?:\.\d+)?)?"
_XRPC = r"/bluesky/xrpc/"

ROUTES = [
    # Who a token belongs to (asked when an account is connected); before the Graph's
    # `/{page}` routes, which would take `me` for a page.
    _route("GET", r"/x/2/users/me", x_users_me, "x"),
    _route("GET", r"/facebook(?:/v\d+(?:\.\d+)?)?/me", facebook_me, "facebook"),
    _route("GET", r"/facebook(?:/v\d+(?:\.\d+)?)?/me/accounts", facebook_my_pages, "facebook"),
    _route("GET", r"/facebook(?:/v\d+(?:\.\d+)?)?/dialog/oauth", facebook_dialog_page, "facebook"),
    _route("POST", r"/facebook(?:/v\d+(?:\.\d+)?)?/dialog/oauth", facebook_dialog_decision, "facebook"),
    _route("GET", r"/facebook(?:/v\d+(?:\.\d+)?)?/oauth/access_token", facebook_access_token, "facebook"),
    _route("GET", r"/linkedin/v2/userinfo", linkedin_userinfo, "linkedin"),
    _route("GET", r"/linkedin/rest/organizationAcls", linkedin_organization_acls, "linkedin"),
    _route("POST", r"/x/2/tweets", x_create_tweet, "x"),
    _route("DELETE", r"/x/2/tweets/(?P<id>[0-9]+)", x_delete_tweet, "x"),
    _route("POST", r"/x/2/oauth2/token", x_oauth_token, "x"),
    _route("GET", r"/x/i/oauth2/authorize", x_authorize_page, "x"),
    _route("POST", r"/x/i/oauth2/authorize", x_authorize_decision, "x"),
    _route("POST", r"/linkedin/oauth/v2/accessToken", linkedin_oauth_token, "linkedin"),
    _route("GET", r"/linkedin/oauth/v2/authorization", linkedin_authorization_page, "linkedin"),
    _route("POST", r"/linkedin/oauth/v2/authorization", linkedin_authorization_decision, "linkedin"),
    _route("POST", r"/_admin/oauth", admin_oauth, "admin"),
    _route("POST", r"/_admin/oauth/clients", admin_oauth_client, "admin"),
    _route("GET", r"/_admin/oauth", admin_oauth_view, "admin"),
    _route("POST", r"/x/2/media/upload", x_media_upload, "x", MAX_UPLOAD_BYTES),
    _route("POST", r"/x/2/media/metadata", x_media_metadata, "x"),
    _route("GET", r"/x/2/media/upload", x_media_status, "x"),
    _route("GET", r"/x/2/users/(?P<id>[^/]+)/tweets", x_user_tweets, "x"),
    _route("POST", _GRAPH + r"/feed", facebook_create_post, "facebook"),
    _route("DELETE", r"/facebook(?:/v\d+(?:\.\d+)?)?/(?P<object>[^/]+)", facebook_delete_object, "facebook"),
    _route("POST", r"/facebook(?:/v\d+(?:\.\d+)?)?/(?P<object>[^/]+_[0-9]+)", facebook_edit_object, "facebook"),
    _route("POST", _GRAPH + r"/photos", facebook_upload_photo, "facebook", MAX_UPLOAD_BYTES),
    _route("POST", _GRAPH + r"/videos", facebook_create_video, "facebook", MAX_UPLOAD_BYTES),
    _route("GET", _GRAPH + r"/(?:feed|posts)", facebook_list_posts, "facebook"),
    _route("GET", _GRAPH + r"/insights", facebook_page_insights, "facebook"),
    _route("POST", _GRAPH + r"/comments", facebook_create_comment, "facebook"),
    _route("GET", _GRAPH + r"/comments", facebook_list_comments, "facebook"),
    _route("POST", r"/linkedin/rest/socialActions/(?P<urn>[^/]+)/comments", linkedin_create_comment, "linkedin"),
    _route("GET", r"/linkedin/rest/socialActions/(?P<urn>[^/]+)/comments", linkedin_list_comments, "linkedin"),
    _route("POST", r"/linkedin/rest/posts", linkedin_create_post, "linkedin"),
    _route("DELETE", r"/linkedin/rest/posts/(?P<urn>[^/]+)", linkedin_delete_post, "linkedin"),
    _route("POST", r"/linkedin/rest/posts/(?P<urn>[^/]+)", linkedin_update_post, "linkedin"),
    _route("DELETE", r"/linkedin/rest/socialActions/(?P<urn>[^/]+)/comments/(?P<id>[^/]+)",
           linkedin_delete_comment, "linkedin"),
    _route("POST", r"/linkedin/rest/(?P<resource>images|documents)", linkedin_initialize_upload, "linkedin"),
    _route("PUT", r"/linkedin/uploads/(?P<token>[A-Za-z0-9]+)", linkedin_upload_bytes, "linkedin",
           MAX_UPLOAD_BYTES),
    _route("GET", r"/linkedin/rest/posts", linkedin_list_posts, "linkedin"),
    _route("GET", _INSTAGRAM + r"/me", instagram_me, "instagram"),
    _route("POST", _INSTAGRAM + r"/(?P<user>\d+)/media", instagram_create_container, "instagram"),
    _route("POST", _INSTAGRAM + r"/(?P<user>\d+)/media_publish", instagram_publish, "instagram"),
    _route("GET", _INSTAGRAM + r"/(?P<user>\d+)/media", instagram_list_media, "instagram"),
    _route("POST", _INSTAGRAM + r"/(?P<user>\d+)/comments", instagram_create_comment, "instagram"),
    _route("GET", _INSTAGRAM + r"/(?P<user>\d+)/comments", instagram_list_comments, "instagram"),
    _route("GET", _INSTAGRAM + r"/(?P<user>\d+)", instagram_object, "instagram"),
    _route("GET", r"/_admin/instagram/containers", admin_instagram_containers, "admin"),
    _route("GET", r"/_admin/uploads", admin_uploads, "admin"),
    _route("POST", _MASTODON + r"/v1/statuses", mastodon_create_status, "mastodon"),
    _route("GET", _MASTODON + r"/v1/statuses/(?P<id>[^/]+)", mastodon_get_status, "mastodon"),
    _route("DELETE", _MASTODON + r"/v1/statuses/(?P<id>[^/]+)", mastodon_delete_status, "mastodon"),
    _route("PUT", _MASTODON + r"/v1/statuses/(?P<id>[^/]+)", mastodon_edit_status, "mastodon"),
    _route("GET", _MASTODON + r"/v1/accounts/verify_credentials", mastodon_verify_credentials, "mastodon"),
    _route("GET", _MASTODON + r"/v1/accounts/(?P<id>[^/]+)/statuses", mastodon_account_statuses, "mastodon"),
    _route("POST", _MASTODON + r"/v2/media", mastodon_upload_media, "mastodon", MAX_UPLOAD_BYTES),
    _route("GET", _MASTODON + r"/v1/media/(?P<id>[^/]+)", mastodon_get_media, "mastodon"),
    _route("POST", _XRPC + r"com\.atproto\.server\.createSession", create_session, "bluesky"),
    _route("POST", _XRPC + r"com\.atproto\.server\.refreshSession", refresh_session, "bluesky"),
    _route("GET", _XRPC + r"com\.atproto\.server\.getSession", get_session, "bluesky"),
    _route("POST", _XRPC + r"com\.atproto\.repo\.createRecord", create_record, "bluesky"),
    _route("GET", _XRPC + r"com\.atproto\.repo\.getRecord", get_record, "bluesky"),
    _route("GET", _XRPC + r"com\.atproto\.repo\.listRecords", list_records, "bluesky"),
    _route("POST", _XRPC + r"com\.atproto\.repo\.deleteRecord", delete_record, "bluesky"),
    _route("POST", _XRPC + r"com\.atproto\.repo\.uploadBlob", upload_blob, "bluesky", MAX_UPLOAD_BYTES),
    _route("GET", _XRPC + r"app\.bsky\.feed\.getPosts", get_posts, "bluesky"),
    _route("POST", r"/sms/messages", sms_send, "sms"),
    _route("GET", r"/sms/messages", sms_lookup, "sms"),
    _route("POST", r"/sinks/" + _NAME, sink_receive, "sink"),
    _route("GET", r"/_admin/health", admin_health, "admin"),
    _route("GET", r"/_admin/posts", admin_posts, "admin"),
    _route("GET", r"/_admin/media", admin_media, "admin"),
    _route("GET", r"/_admin/faults", admin_faults, "admin"),
    _route("POST", r"/_admin/faults", admin_add_fault, "admin"),
    _route("DELETE", r"/_admin/faults", admin_clear_faults, "admin"),
    _route("DELETE", r"/_admin/faults/(?P<id>flt_\d+)", admin_remove_fault, "admin"),
    _route("POST", r"/_admin/tokens", admin_tokens, "admin"),
    _route("GET", r"/_admin/limits", admin_limits, "admin"),
    _route("POST", r"/_admin/limits", admin_set_limit, "admin"),
    _route("POST", r"/_admin/reset", admin_reset, "admin"),
    _route("POST", r"/_admin/timeline", admin_seed_timeline, "admin"),
    _route("GET", r"/_admin/timeline", admin_timeline, "admin"),
    _route("POST", r"/_admin/insights", admin_seed_insights, "admin"),
    _route("GET", r"/_admin/insights", admin_insights, "admin"),
    _route("GET", r"/_admin/sinks/" + _NAME, admin_sink_requests, "admin"),
    _route("POST", r"/_admin/sinks/" + _NAME, admin_sink_script, "admin"),
    # engagement metrics
    _route("GET", r"/x/2/tweets", x_tweets_lookup, "x"),
    _route("GET", _GRAPH, facebook_post_fields, "facebook"),
    _route("GET", r"/linkedin/rest/socialActions/(?P<urn>[^/]+)", linkedin_social_actions, "linkedin"),
    _route("POST", r"/_admin/metrics", admin_set_metrics, "admin"),
    _route("POST", r"/_admin/bluesky/accounts", admin_bluesky_add_account, "admin"),
    _route("GET", r"/_admin/bluesky/accounts", admin_bluesky_accounts, "admin"),
    _route("POST", r"/_admin/bluesky/expire", admin_bluesky_expire, "admin"),
    _route("GET", r"/_admin/bluesky/sessions", admin_bluesky_sessions, "admin"),
    _route("POST", r"/_admin/bluesky/settings", admin_bluesky_settings, "admin"),
    _route("POST", r"/_admin/sms/settings", admin_sms_settings, "admin"),
    _route("GET", r"/_admin/sms/settings", admin_sms_settings_view, "admin"),
    _route("POST", r"/_admin/sms/inbound", admin_sms_inbound, "admin"),
    _route("GET", r"/_admin/sms/messages", admin_sms_messages, "admin"),
    _route("GET", r"/_admin/sms/receipts", admin_sms_receipts, "admin"),
]


def resolve(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """The route and its path parameters, or None and the methods the path allows."""
    allowed: list[str] = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match:
            if route.method == method:
                return route, match.groupdict(), []
            allowed.append(route.method)
    return None, {}, allowed
