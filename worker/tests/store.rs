//! The shard store on a real temp directory.
#![allow(clippy::cast_possible_truncation)]

use std::fs;
use std::sync::Arc;

use disktro_core::ShardId;
use disktro_worker::store::{PutOutcome, ShardStore, StoreError, shard_file};

fn shard(seed: u8, len: usize) -> (ShardId, Vec<u8>) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i % 256) as u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(seed))
        .collect();
    (ShardId::of(&bytes), bytes)
}

fn files_under(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        n += if p.is_dir() { files_under(&p) } else { 1 };
    }
    n
}

#[test]
fn put_get_round_trip_in_a_content_addressed_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let (id, bytes) = shard(1, 1000);
    assert_eq!(store.put(&id, &bytes).unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(&id).unwrap(), bytes);
    let hex = id.to_hex();
    let path = shard_file(dir.path(), &id);
    assert_eq!(path, dir.path().join("shards").join(&hex[..2]).join(&hex));
    assert!(path.is_file());
    assert_eq!(store.stats().used, 1000);
    assert_eq!(store.stats().shards, 1);
    assert_eq!(store.ids().unwrap(), vec![id]);
}

#[test]
fn a_store_in_the_two_level_layout_is_moved_and_loses_nothing() {
    // Tried: a data directory written with the earlier layout (`shards/ab/cd/<id>`), one shard
    // already moved (as when a crash interrupts the move) and a stray file beside old shards.
    // Must hold: every shard is counted and served from `shards/ab/<id>`; emptied old
    // directories are gone; the stray file and its directory stay; opening again changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (0..20u8).map(|i| shard(i, 300 + usize::from(i))).collect();
    let old_dir = |id: &ShardId| {
        let hex = id.to_hex();
        dir.path().join("shards").join(&hex[..2]).join(&hex[2..4])
    };
    for (n, (id, bytes)) in shards.iter().enumerate() {
        let path = if n == 0 {
            shard_file(dir.path(), id)
        } else {
            old_dir(id).join(id.to_hex())
        };
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
    }
    let stray = old_dir(&shards[1].0).join("notes.txt");
    fs::write(&stray, b"not a shard").unwrap();
    // One shard filed under another prefix's old directory: it goes where its name says.
    let (misplaced, _) = &shards[2];
    let other = if misplaced.to_hex().starts_with("00") {
        "01"
    } else {
        "00"
    };
    let misfiled = dir.path().join("shards").join(other).join("ff");
    fs::create_dir_all(&misfiled).unwrap();
    fs::rename(
        old_dir(misplaced).join(misplaced.to_hex()),
        misfiled.join(misplaced.to_hex()),
    )
    .unwrap();

    for _ in 0..2 {
        let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.stats().shards, 20);
        assert_eq!(
            store.stats().used,
            shards.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
        );
        for (id, bytes) in &shards {
            assert!(shard_file(dir.path(), id).is_file());
            assert_eq!(&store.get(id).unwrap(), bytes);
        }
        for (id, _) in &shards[2..] {
            assert!(!old_dir(id).exists(), "the emptied {} stays", old_dir(id).display());
        }
        assert!(!misfiled.exists());
        assert!(stray.is_file());
        let mut ids = store.ids().unwrap();
        ids.sort();
        let mut want: Vec<_> = shards.iter().map(|(id, _)| *id).collect();
        want.sort();
        assert_eq!(ids, want);
    }
}

#[test]
fn every_fanout_directory_exists_once_opened() {
    // Must hold: the 256 directories exist before the first put, so a put makes none.
    let dir = tempfile::tempdir().unwrap();
    let _store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let dirs = fs::read_dir(dir.path().join("shards")).unwrap().count();
    assert_eq!(dirs, 256);
}

#[test]
fn wrong_hash_stores_nothing() {
    // Tried: bytes that do not hash to the claimed id. Must hold: HashMismatch, no file anywhere.
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let (id, mut bytes) = shard(2, 500);
    bytes[0] ^= 1;
    assert!(matches!(store.put(&id, &bytes), Err(StoreError::HashMismatch)));
    assert_eq!(files_under(dir.path()), 0);
    assert_eq!(store.stats().used, 0);
    assert!(matches!(store.get(&id), Err(StoreError::NotFound)));
}

#[test]
fn identical_shard_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let (id, bytes) = shard(3, 700);
    store.put(&id, &bytes).unwrap();
    let path = shard_file(dir.path(), &id);
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(store.put(&id, &bytes).unwrap(), PutOutcome::AlreadyStored);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert_eq!(store.stats().used, 700, "counted once");
}

#[test]
fn rotted_shard_is_quarantined_and_never_served() {
    // Tried: a bit flipped on disk behind the store's back. Must hold: Corrupt, the file moved to
    // quarantine and counted, then NotFound; a fresh put of the good bytes restores it.
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let (id, bytes) = shard(4, 900);
    store.put(&id, &bytes).unwrap();
    let path = shard_file(dir.path(), &id);
    let mut rotted = fs::read(&path).unwrap();
    rotted[450] ^= 0x08;
    fs::write(&path, &rotted).unwrap();
    assert!(matches!(store.get(&id), Err(StoreError::Corrupt)));
    assert!(!path.exists());
    assert_eq!(store.stats().quarantined, 1);
    assert_eq!(store.stats().shards, 0);
    assert_eq!(files_under(&dir.path().join("quarantine")), 1);
    assert!(matches!(store.get(&id), Err(StoreError::NotFound)));
    assert_eq!(store.put(&id, &bytes).unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(&id).unwrap(), bytes);
}

#[test]
fn capacity_is_enforced() {
    // Tried: a shard that does not fit. Must hold: StorageFull naming the sizes, nothing stored.
    let dir = tempfile::tempdir().unwrap();
    let store = ShardStore::open(dir.path(), 1500).unwrap();
    let (a, bytes_a) = shard(5, 1000);
    let (b, bytes_b) = shard(6, 1000);
    store.put(&a, &bytes_a).unwrap();
    match store.put(&b, &bytes_b) {
        Err(StoreError::StorageFull {
            needed: 1000,
            free: 500,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.get(&b), Err(StoreError::NotFound)));
    assert!(store.delete(&a).unwrap());
    assert!(!store.delete(&a).unwrap());
    assert_eq!(store.stats().used, 0);
    store.put(&b, &bytes_b).unwrap();
}

#[test]
fn restart_keeps_shards_and_removes_interrupted_writes() {
    // Tried: a write interrupted by a crash (a temp file left in tmp/), then a restart. Must hold:
    // the temp file is removed and counted, stored shards and accounting survive.
    let dir = tempfile::tempdir().unwrap();
    let (id, bytes) = shard(7, 1234);
    {
        let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
        store.put(&id, &bytes).unwrap();
    }
    fs::write(
        dir.path().join("tmp").join(format!("{}.0.tmp", id.to_hex())),
        &bytes[..100],
    )
    .unwrap();
    fs::write(dir.path().join("shards").join("not-a-shard"), b"ignored").unwrap();
    let store = ShardStore::open(dir.path(), 1 << 20).unwrap();
    let stats = store.stats();
    assert_eq!(stats.stale_temp_files_removed, 1);
    assert_eq!(files_under(&dir.path().join("tmp")), 0);
    assert_eq!((stats.shards, stats.used), (1, 1234));
    assert_eq!(store.get(&id).unwrap(), bytes);
}

#[test]
fn concurrent_puts_of_one_shard_count_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ShardStore::open(dir.path(), 1 << 20).unwrap());
    let (id, bytes) = shard(8, 4096);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, bytes) = (store.clone(), bytes.clone());
            std::thread::spawn(move || store.put(&id, &bytes).unwrap())
        })
        .collect();
    let outcomes: Vec<PutOutcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(outcomes.contains(&PutOutcome::Stored));
    assert_eq!(store.stats().shards, 1);
    assert_eq!(store.stats().used, 4096);
    assert_eq!(
        files_under(&dir.path().join("tmp")),
        0,
        "losing writers clean up their temp files"
    );
}
