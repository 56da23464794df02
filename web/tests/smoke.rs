//! The in-process server starts and answers as each role, and keeps answering while its
//! ledger is busy.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use medarena_arena::ledger_sink::open_ledger;

#[test]
fn server_answers_every_role() {
    let server = common::TestServer::start();
    for (role, _) in common::ROLES {
        let me = server.get(role, "/api/v1/me");
        assert_eq!(me.status, 200, "{role}: {}", me.text);
    }
    assert_eq!(server.get("anonymous", "/api/v1/me").status, 401);
    let board = server.get(
        "anonymous",
        &format!(
            "/api/v1/competitions/{}/leaderboard",
            server.cast.competition.0
        ),
    );
    assert_eq!(board.status, 200, "{}", board.text);
}

/// A look at the ledger waits for the batch being appended (an fsync, a PostgreSQL commit)
/// and reads entries from its store (a database round trip on PostgreSQL). The ledger's
/// endpoints do that in the blocking pool, so a busy ledger never stops the server's async
/// workers: here a server with a single thread answers `/healthz` while a ledger request
/// waits for the ledger. Before, the ledger request held the only thread until the ledger
/// was free again.
#[test]
fn a_busy_ledger_does_not_stop_other_requests() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (world, ledger, app) = rt.block_on(async {
        let world = common::world::World::new().await;
        let ledger =
            Arc::new(open_ledger(world.dir.path(), "medarena.test/ledger").expect("ledger"));
        let state = medarena_web::AppState::new(world.arena.clone(), ledger.clone());
        (world, ledger, medarena_web::router(state))
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    // The server's one thread; it ends with the test process.
    std::thread::spawn(move || {
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await
        })
    });
    let status = |path: &str| {
        ureq::get(format!("{base}{path}"))
            .call()
            .map(|answer| answer.status().as_u16())
    };

    // Another thread holds the ledger, as a long append would.
    let held = Arc::new(AtomicBool::new(true));
    let (entered, entered_seen) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let holder = {
        let (ledger, held) = (ledger.clone(), held.clone());
        std::thread::spawn(move || {
            ledger.update(|_| {
                entered.send(()).expect("the test waits");
                // Let go when the test says, or after a while: a server stuck on the ledger
                // then gets its thread back and the test fails instead of hanging.
                let _ = released.recv_timeout(Duration::from_secs(10));
                held.store(false, Ordering::SeqCst);
            })
        })
    };
    entered_seen.recv().expect("the ledger is held");
    let checkpoint = {
        let url = format!("{base}/api/ledger/checkpoint");
        std::thread::spawn(move || ureq::get(url).call().map(|a| a.status().as_u16()))
    };
    // Let the server take the checkpoint request first (were it late, this test would pass
    // without showing anything, never fail wrongly).
    std::thread::sleep(Duration::from_millis(300));
    let health = status("/healthz");
    let answered_while_held = held.load(Ordering::SeqCst);
    let _ = release.send(());
    holder.join().expect("the holder");
    assert_eq!(health.expect("/healthz"), 200);
    assert!(
        answered_while_held,
        "/healthz was answered only once the ledger was free: a ledger request held the server's thread"
    );
    let checkpoint = checkpoint.join().expect("the checkpoint request");
    assert_eq!(checkpoint.expect("/api/ledger/checkpoint"), 200);
    drop(world);
}
