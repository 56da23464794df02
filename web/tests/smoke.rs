//! The in-process server starts and answers as each role.
mod common;

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
