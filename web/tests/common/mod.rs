//! An in-process server for the web tests: the arena of `arena/tests/common` (scripted
//! executor and validator, manual clock in the example bundle's public phase, the cast of
//! organizer, auditor, two hospitals, two teams, an approved dataset of the example heart
//! tables and a competition),
//! served by the real router on a loopback port, with a bearer token per role.
#![allow(dead_code)]

#[path = "../../../arena/tests/common/mod.rs"]
pub mod world;

use std::collections::HashMap;
use std::sync::Arc;

use medarena_arena::ledger_sink::open_ledger;
use serde_json::Value;

/// The roles of the cast, by the name the tests use.
pub const ROLES: [(&str, &str); 6] = [
    ("organizer", "org@medarena.test"),
    ("auditor", "auditor@medarena.test"),
    ("hospital_a", "a@hospital-a.test"),
    ("hospital_b", "b@hospital-b.test"),
    ("team_x", "x@team-x.test"),
    ("team_y", "y@team-y.test"),
];

/// The operators' token for `/metrics` in the test server.
pub const METRICS_TOKEN: &str = "operators-metrics-token";

pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub base: String,
    pub world: world::World,
    pub cast: world::Cast,
    /// Bearer tokens by role name (see [`ROLES`]).
    pub tokens: HashMap<&'static str, String>,
    agent: ureq::Agent,
}

/// A response: status, body text and, when it parses, JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub json: Value,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(world::EXAMPLE_BUNDLE)
    }

    /// As [`TestServer::start`], with the cast's competition created from `bundle_yaml`.
    pub fn start_with(bundle_yaml: &str) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (world, cast, tokens, base) = rt.block_on(async {
            let world = world::World::new().await;
            // The example heart tables: synthetic releases measure the rows for real.
            let cast = world::cast_with(&world.arena, bundle_yaml, world::heart_uploads()).await;
            let mut tokens = HashMap::new();
            for (role, email) in ROLES {
                tokens.insert(role, world::sign_in(&world.arena, email).await.1);
            }
            let ledger =
                Arc::new(open_ledger(world.dir.path(), "medarena.test/ledger").expect("ledger"));
            let app = medarena_web::router({
                let mut state = medarena_web::AppState::new(world.arena.clone(), ledger);
                state.metrics_token = Some(METRICS_TOKEN.into());
                state
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("address"));
            tokio::spawn(async move { axum::serve(listener, app).await });
            (world, cast, tokens, base)
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A fresh connection per request: the server closes a connection whose request
            // body it refused unread, and a pooled one would then fail the next request.
            .max_idle_connections(0)
            .max_redirects(0)
            .build()
            .into();
        TestServer {
            rt,
            base,
            world,
            cast,
            tokens,
            agent,
        }
    }

    pub fn token(&self, role: &str) -> Option<&str> {
        self.tokens.get(role).map(String::as_str)
    }

    /// A request with the role's bearer token (`"anonymous"` sends none).
    pub fn call(
        &self,
        role: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        cookie: Option<&str>,
    ) -> Answer {
        let bearer = self.token(role).map(str::to_owned);
        self.send(method, path, content_type, body, cookie, bearer.as_deref())
    }

    /// A GET with this bearer token (not a role's).
    pub fn get_with_bearer(&self, path: &str, token: &str) -> Answer {
        self.send(
            "GET",
            path,
            "application/json",
            Vec::new(),
            None,
            Some(token),
        )
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        cookie: Option<&str>,
        bearer: Option<&str>,
    ) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(token) = bearer {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let request = request.body(body).expect("request");
        let mut response = self.agent.run(request).expect("HTTP round trip");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            text,
            json,
            headers,
        }
    }

    pub fn get(&self, role: &str, path: &str) -> Answer {
        self.call(role, "GET", path, "application/json", Vec::new(), None)
    }

    /// A GET as the browser of a session: the cookie, no bearer token.
    pub fn get_with_cookie(&self, path: &str, cookie: &str) -> Answer {
        self.call(
            "anonymous",
            "GET",
            path,
            "text/html",
            Vec::new(),
            Some(cookie),
        )
    }

    pub fn post_json(&self, role: &str, path: &str, body: &Value) -> Answer {
        self.call(
            role,
            "POST",
            path,
            "application/json",
            serde_json::to_vec(body).expect("json"),
            None,
        )
    }

    /// Runs every queued job (the scripted executor) until the queue is empty, then moves
    /// the clock past every real run's release time.
    pub fn drain(&self) -> usize {
        self.rt.block_on(self.world.release())
    }
}
