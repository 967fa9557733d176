//! The metadata database encrypted with SQLCipher: nothing readable in its files, the
//! right key reopens it, a wrong key or a flipped byte is an error.

use minim_crypto::Key;
use minim_meta::{MetaStore, SqliteMeta};

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn encrypted_meta_hides_contents_and_refuses_wrong_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("meta.db");
    let key = Key::generate().expect("key");
    let name = "planted-project-name-4242";
    let id = {
        let meta = SqliteMeta::open_encrypted(&path, &key).expect("open");
        meta.create_project(name, 0).expect("create").project.id
    };
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("ls") {
        all.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(!all.is_empty());
    assert!(!contains(&all, name), "project name in the clear");
    assert!(!contains(&all, "CREATE TABLE"), "schema in the clear");
    assert!(
        !contains(&all, "SQLite format 3"),
        "a plaintext SQLite header"
    );

    let meta = SqliteMeta::open_encrypted(&path, &key).expect("reopen");
    assert_eq!(meta.project(&id).expect("get").expect("some").name, name);
    drop(meta);

    let wrong = Key::generate().expect("key");
    let err = SqliteMeta::open_encrypted(&path, &wrong)
        .err()
        .expect("wrong key refused");
    assert!(err.to_string().contains("meta.db"), "{err}");
    assert!(SqliteMeta::open(&path).is_err(), "opened without a key");

    // A flipped byte inside the first page: reported, not returned as data.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[100] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    assert!(SqliteMeta::open_encrypted(&path, &key).is_err());
}
