//! The object store on a real S3-compatible server (`./scripts/test` starts `s3s-fs` on
//! loopback and sets `MEDARENA_TEST_S3_URL` and the `AWS_*` environment).

use medarena_arena::objects::{ObjectId, ObjectStore, ObjectStoreError, S3ObjectStore};

const S3_URL_ENV: &str = "MEDARENA_TEST_S3_URL";

fn store(prefix: &str) -> Option<S3ObjectStore> {
    let Ok(base) = std::env::var(S3_URL_ENV) else {
        eprintln!("not run: set {S3_URL_ENV} (./scripts/test does)");
        return None;
    };
    let location = format!(
        "{}/{prefix}-{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    Some(S3ObjectStore::from_env(&location).expect("an S3 object store"))
}

#[tokio::test]
async fn content_addressing_integrity_and_deletion_on_s3() {
    let Some(store) = store("contract") else {
        return;
    };
    let id = store.put(b"sealed bytes").await.expect("put");
    assert_eq!(id, ObjectId::of(b"sealed bytes"));
    assert_eq!(store.put(b"sealed bytes").await.expect("put again"), id);
    assert!(store.contains(&id).await.expect("contains"));
    assert_eq!(store.get(&id).await.expect("get"), b"sealed bytes");

    // The service is trusted with availability only: altered bytes are refused.
    store
        .overwrite(&id, b"altered bytes")
        .await
        .expect("tamper");
    match store.get(&id).await {
        Err(ObjectStoreError::Corrupt { id: wanted, actual }) => {
            assert_eq!(wanted, id);
            assert_eq!(actual, ObjectId::of(b"altered bytes"));
        }
        other => panic!("a tampered object was not refused: {other:?}"),
    }

    store.delete(&id).await.expect("delete");
    assert!(!store.contains(&id).await.expect("contains after delete"));
    assert!(matches!(
        store.get(&id).await,
        Err(ObjectStoreError::NotFound(missing)) if missing == id
    ));
    store
        .delete(&id)
        .await
        .expect("deleting twice is not an error");
}

#[test]
fn bad_locations_are_named() {
    for (location, expected) in [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
    ] {
        let err = S3ObjectStore::from_env(location).expect_err(location);
        let text = err.to_string();
        assert!(
            text.contains(location) && text.contains(expected),
            "{location}: {text}"
        );
    }
}
