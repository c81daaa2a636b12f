//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! attributes and the wire types' schemas, served at `/api/v1/openapi.json` (and checked into
//! `docs/openapi.json`, tested to match).

use axum::Json;
use marketplace_protocol::v1;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::{accounts, api, download};

/// The error responses every endpoint may give, each with the JSON error body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum Errors {
    /// Invalid input: the body says which field and why.
    #[response(status = 400)]
    Invalid(v1::ErrorResponse),
    /// No API token, or one the server did not issue.
    #[response(status = 401)]
    Unauthenticated(v1::ErrorResponse),
    /// The token may not do this (revoked, expired, scope, pattern), the user is not an
    /// owner, or the key or signature is refused.
    #[response(status = 403)]
    Forbidden(v1::ErrorResponse),
    /// No such package, version, user, token or key.
    #[response(status = 404)]
    NotFound(v1::ErrorResponse),
    /// The version exists, or a resolution conflict.
    #[response(status = 409)]
    Conflict(v1::ErrorResponse),
    /// The body is larger than this server accepts.
    #[response(status = 413)]
    TooLarge(v1::ErrorResponse),
    /// The body is not of the media type this endpoint takes.
    #[response(status = 415)]
    WrongMediaType(v1::ErrorResponse),
    /// Over the rate limit: retry after `Retry-After` seconds.
    #[response(status = 429)]
    RateLimited(v1::ErrorResponse),
    /// A backend is briefly unavailable: retry after `Retry-After` seconds.
    #[response(status = 503)]
    Unavailable(v1::ErrorResponse),
}

/// Adds the bearer-token security scheme the endpoints refer to.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Marketplace API",
        description = "The versioned JSON API of a Marketplace server. A namespaced package is one path segment with its slash percent-encoded (acme%2Fweb). Errors are {\"error\": {\"kind\", \"message\", \"field\"?, \"hint\"?}}."
    ),
    modifiers(&BearerToken),
    components(schemas(v1::ErrorResponse, v1::ErrorBody)),
    paths(
        api::publish,
        api::publish_batch,
        api::versions,
        api::version_metadata,
        api::info,
        api::stats,
        download::download,
        download::archive,
        download::count_download,
        api::resolve,
        api::search,
        api::facets,
        api::similar,
        api::suggest,
        api::events,
        api::keys,
        accounts::me,
        accounts::my_keys,
        accounts::add_key,
        accounts::revoke_key,
        accounts::users,
        accounts::create_user,
        accounts::user_keys,
        accounts::tokens,
        accounts::create_token,
        accounts::revoke_token,
        accounts::package_owners,
        accounts::add_package_owners,
        accounts::remove_package_owners,
        accounts::namespace_owners,
        accounts::add_namespace_owners,
        accounts::remove_namespace_owners,
        accounts::yank,
        accounts::unyank,
        openapi_json,
    )
)]
pub(crate) struct ApiDoc;

/// The document as served (and as `docs/openapi.json` holds it).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
