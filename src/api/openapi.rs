//! The OpenAPI 3.1 document, built with utoipa from the endpoint table (so it lists
//! exactly the routes the router serves), at `/openapi.json`, and the Swagger UI at
//! `/docs` (vendored into the binary: nothing is fetched at build or run time).

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::extract::Path;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required,
    ResponseBuilder, Schema,
};

use super::endpoints::{self, Auth, Body, Endpoint, Tag};

/// Names of the security schemes in the document.
mod scheme {
    pub const SOURCE_BEARER: &str = "source_key";
    pub const BUYER_BEARER: &str = "buyer_key";
    pub const ADMIN_BEARER: &str = "admin_key";
    pub const API_KEY_HEADER: &str = "x_api_key";
    pub const SESSION: &str = "session_cookie";
}

/// The name of the session cookie (the portal's and the console's, on their own paths).
pub const SESSION_COOKIE: &str = "lg_session";

fn schema(v: serde_json::Value) -> Option<RefOr<Schema>> {
    serde_json::from_value(v).ok()
}

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

/// A query parameter's schema from its table kind: `integer`, `string`, `date-time`, or
/// `enum:a|b|c`.
fn param_schema(kind: &str) -> serde_json::Value {
    match kind {
        "date-time" => serde_json::json!({"type": "string", "format": "date-time"}),
        k => match k.strip_prefix("enum:") {
            Some(values) => {
                serde_json::json!({"type": "string", "enum": values.split('|').collect::<Vec<_>>()})
            }
            None => serde_json::json!({"type": k}),
        },
    }
}

/// `{name}` and `{*name}` segments of an axum path.
fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_start_matches('*').to_string())
        .collect()
}

/// The OpenAPI form of an axum path: `{*file}` becomes `{file}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn request_body(body: Body) -> Option<utoipa::openapi::request_body::RequestBody> {
    let object = || ContentBuilder::new().schema(schema(serde_json::json!({"type": "object"}))).build();
    let form = || {
        ContentBuilder::new()
            .schema(schema(serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}})))
            .build()
    };
    let b = RequestBodyBuilder::new().required(Some(Required::True));
    let b = match body {
        Body::None => return None,
        Body::Lead => b
            .description(Some("One lead (object) or a batch (array); CSV, XML and ADF are accepted too."))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(schema(serde_json::json!({
                        "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                    })))
                    .build(),
            )
            .content("application/x-www-form-urlencoded", form())
            .content("application/xml", ContentBuilder::new().schema(schema(serde_json::json!({"type": "string"}))).build())
            .content("text/csv", ContentBuilder::new().schema(schema(serde_json::json!({"type": "string"}))).build()),
        Body::Json => b.content("application/json", object()),
        Body::Disposition => b.content(
            "application/json",
            ContentBuilder::new()
                .schema(schema(serde_json::json!({
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": ["accepted", "rejected", "returned", "contacted", "converted"]},
                        "reason": {"type": "string", "description": "Required for rejected and returned."},
                        "value": {"description": "Conversion value, kept verbatim."}
                    },
                    "additionalProperties": false
                })))
                .build(),
        ),
        Body::Form => b.content("application/x-www-form-urlencoded", form()),
        Body::FormOrJson => {
            b.content("application/x-www-form-urlencoded", form()).content("application/json", object())
        }
    };
    Some(b.build())
}

fn operation(e: &Endpoint) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .tag(e.tag.as_str())
        .summary(Some(e.summary))
        .operation_id(Some(operation_id(e)));
    for name in path_params(e.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(schema(serde_json::json!({"type": "string"}))),
        );
    }
    for p in e.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(p.name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(p.description))
                .schema(schema(param_schema(p.kind))),
        );
    }
    op = op.request_body(request_body(e.body));
    let content_type = if e.html { "text/html" } else { "application/json" };
    for (code, text) in e.all_responses() {
        let mut r = ResponseBuilder::new().description(text);
        if !(300..400).contains(&code) && code != 204 {
            r = r.content(content_type, ContentBuilder::new().build());
        }
        op = op.response(code.to_string(), r.build());
    }
    let requirements: Vec<SecurityRequirement> = match e.auth {
        Auth::Public | Auth::Vendor => Vec::new(),
        Auth::SourceKey => key_requirements(scheme::SOURCE_BEARER),
        Auth::BuyerKey => key_requirements(scheme::BUYER_BEARER),
        Auth::AdminKey => key_requirements(scheme::ADMIN_BEARER),
        Auth::Session => vec![SecurityRequirement::new::<_, [&str; 0], &str>(scheme::SESSION, [])],
    };
    for r in requirements {
        op = op.security(r);
    }
    op.build()
}

/// `get_v1_leads_id`; `/` is `home`, a trailing `/` adds `_index`.
fn operation_id(e: &Endpoint) -> String {
    let mut name = openapi_path(e.path).trim_matches('/').replace(['/', '{', '}', '.', '-'], "_");
    if name.is_empty() {
        name = "home".into();
    } else if e.path.ends_with('/') {
        name.push_str("_index");
    }
    format!("{}_{name}", e.method.as_str().to_lowercase())
}

fn key_requirements(bearer: &str) -> Vec<SecurityRequirement> {
    vec![
        SecurityRequirement::new::<_, [&str; 0], &str>(bearer, []),
        SecurityRequirement::new::<_, [&str; 0], &str>(scheme::API_KEY_HEADER, []),
    ]
}

/// The document for `list`.
pub fn build(list: &[Endpoint]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for e in list {
        paths = paths.path(openapi_path(e.path), PathItem::new(http_method(&e.method), operation(e)));
    }
    let bearer = |what: &str| {
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what.to_string())).build(),
        )
    };
    let components = ComponentsBuilder::new()
        .security_scheme(scheme::SOURCE_BEARER, bearer("A source's API key."))
        .security_scheme(scheme::BUYER_BEARER, bearer("A buyer's or pull partner's API key."))
        .security_scheme(scheme::ADMIN_BEARER, bearer("An admin key."))
        .security_scheme(
            scheme::API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        )
        .security_scheme(
            scheme::SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        )
        .build();
    let tags = [
        (Tag::Intake, "Vendors submit leads."),
        (Tag::Vendors, "Per-vendor webhooks and posts, each with its own conventions."),
        (Tag::Partner, "Pull partners claim leads; buyers report dispositions."),
        (Tag::Admin, "Operators: leads, submissions, replay, redelivery, config."),
        (Tag::Health, "Liveness, readiness, metrics."),
        (
            Tag::Web,
            "The partner portal and operator console (HTML pages, session cookie, CSRF token in every form).",
        ),
        (Tag::Docs, "This document and its page."),
    ]
    .map(|(t, d)| TagBuilder::new().name(t.as_str()).description(Some(d)).build());
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("leadgate")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(env!("CARGO_PKG_DESCRIPTION")))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .tags(Some(tags))
        .build()
}

/// The document of the gateway's endpoint table, built once.
static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::to_value(build(&endpoints::all())).unwrap_or_default());

/// `GET /openapi.json`.
pub async fn document() -> Json<serde_json::Value> {
    Json(DOCUMENT.clone())
}

/// `GET /docs`: Swagger UI lives under `/docs/`.
pub async fn docs_index() -> Redirect {
    Redirect::to("/docs/")
}

static SWAGGER: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")));

/// `GET /docs/`: Swagger UI's page.
pub async fn docs_home() -> Response {
    swagger_file("index.html")
}

/// `GET /docs/{*file}`: Swagger UI's files, from the binary.
pub async fn docs_file(Path(file): Path<String>) -> Response {
    swagger_file(&file)
}

fn swagger_file(file: &str) -> Response {
    match utoipa_swagger_ui::serve(file, SWAGGER.clone()) {
        Ok(Some(f)) => {
            let mut r = ([(header::CONTENT_TYPE, f.content_type)], f.bytes.into_owned()).into_response();
            if f.gzpipped {
                r.headers_mut().insert(header::CONTENT_ENCODING, header::HeaderValue::from_static("gzip"));
            }
            r
        }
        Ok(None) => super::response::ApiError::not_found("file").into_response(),
        Err(e) => {
            tracing::warn!(error.message = %e, "Swagger UI file could not be served.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_of_the_table_is_in_the_document_with_its_method() {
        let list = endpoints::all();
        let doc = serde_json::to_value(build(&list)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for e in &list {
            let item = &doc["paths"][openapi_path(e.path)];
            let op = &item[e.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {} missing from the document", e.method, e.path);
            for name in path_params(e.path) {
                assert!(
                    op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == name.as_str()),
                    "{} {}: path parameter {name} undocumented",
                    e.method,
                    e.path
                );
            }
        }
        let ops: usize =
            doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(ops, list.len(), "one operation per table row");
    }

    #[test]
    fn the_table_has_no_route_twice_and_operation_ids_are_unique() {
        let list = endpoints::all();
        let mut seen = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for e in &list {
            assert!(seen.insert((e.method.to_string(), e.path)), "{} {} twice", e.method, e.path);
            assert!(ids.insert(operation_id(e)), "operation id {} twice", operation_id(e));
        }
    }
}
