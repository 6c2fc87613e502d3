//! `disktro gateway` as S3 tools use it: the real `rclone` and `aws` programs (Debian's packages,
//! installed by scripts/setup) against the gateway process, on a real network on 127.0.0.1.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod common;

use common::*;

/// Debian's programs by their full paths: a user's own `aws` (pip's, pyenv's) may be another
/// version with other defaults.
const RCLONE: &str = "/usr/bin/rclone";
const AWS: &str = "/usr/bin/aws";

/// The gateway process, stopped when dropped.
struct GatewayProcess {
    child: Child,
    endpoint: String,
}

impl GatewayProcess {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(BIN)
            .env("DISKTRO_CONFIG_DIR", config)
            .env_remove("DISKTRO_SERVER")
            .args(["gateway", "--listen", "127.0.0.1:0", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let said: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Self {
            child,
            endpoint: format!("http://{}", said["listening"].as_str().unwrap()),
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Credentials {
    id: String,
    secret: String,
}

/// Run `program` with `env`, off the async threads.
async fn run(program: &str, args: &[&str], env: Vec<(String, String)>) -> Output {
    let mut cmd = Command::new(program);
    // rclone 1.60 fails to start with AWS_CA_BUNDLE set ("HTTPClient's transport unsupported
    // type"), and neither tool needs it for plain HTTP.
    cmd.args(args)
        .env_remove("AWS_CA_BUNDLE")
        .envs(env)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || {
        cmd.output()
            .unwrap_or_else(|e| panic!("{e}: is it installed (scripts/setup)?"))
    })
    .await
    .unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn succeeded(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed ({}): {}", o.status, said(o));
}

async fn rclone(gw: &GatewayProcess, key: &Credentials, home: &Path, args: &[&str]) -> Output {
    let env = vec![
        ("RCLONE_CONFIG".into(), home.join("rclone.conf").display().to_string()),
        ("RCLONE_CONFIG_DK_TYPE".into(), "s3".into()),
        ("RCLONE_CONFIG_DK_PROVIDER".into(), "Other".into()),
        ("RCLONE_CONFIG_DK_ENDPOINT".into(), gw.endpoint.clone()),
        ("RCLONE_CONFIG_DK_ACCESS_KEY_ID".into(), key.id.clone()),
        ("RCLONE_CONFIG_DK_SECRET_ACCESS_KEY".into(), key.secret.clone()),
        ("RCLONE_CONFIG_DK_REGION".into(), "us-east-1".into()),
    ];
    let mut all = vec!["--low-level-retries", "1", "--retries", "1"];
    all.extend_from_slice(args);
    run(RCLONE, &all, env).await
}

async fn aws(gw: &GatewayProcess, key: &Credentials, home: &Path, args: &[&str]) -> Output {
    let env = vec![
        ("AWS_ACCESS_KEY_ID".into(), key.id.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), key.secret.clone()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_CONFIG_FILE".into(), home.join("aws-config").display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            home.join("aws-credentials").display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_MAX_ATTEMPTS".into(), "1".into()),
        ("AWS_PAGER".into(), String::new()),
    ];
    let mut all = vec!["--endpoint-url", gw.endpoint.as_str()];
    all.extend_from_slice(args);
    run(AWS, &all, env).await
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `dir`, by its path below it, with its bytes.
fn tree_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push((
                    path.strip_prefix(dir).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Tried: rclone copies a tree with nested folders and files of 0 B, 1 B, 5 MiB + 1 and 64 MiB,
/// then checks it (sizes and MD5s), syncs it with a file deleted and one added, and copies it
/// back; the aws CLI sends 200 MiB through a multipart upload, reads it back, lists with
/// prefixes and reads a range across a chunk boundary. Must hold: every byte identical, the
/// objects are the account's files under the same paths for the CLI, a folder made with the CLI
/// lists in rclone, and a wrong secret, a revoked key or a wrong Content-MD5 are refused with
/// S3's codes and store nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rclone_and_the_aws_cli_store_and_read_back_trees_and_large_objects_through_the_gateway() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cfg");
    sign_up(&net, &cfg, "s3@example.org").await;

    let made = disktro(&cfg, None, &["gateway", "keys", "create", "--json"], None).await;
    ok(&made, "gateway keys create");
    let made: serde_json::Value = serde_json::from_str(&stdout(&made)).unwrap();
    let key = Credentials {
        id: made["access_key_id"].as_str().unwrap().to_owned(),
        secret: made["secret_access_key"].as_str().unwrap().to_owned(),
    };
    let listed = disktro(&cfg, None, &["gateway", "keys", "ls", "--json"], None).await;
    ok(&listed, "gateway keys ls");
    assert!(stdout(&listed).contains(&key.id) && !stdout(&listed).contains(&key.secret));
    let gw = GatewayProcess::start(&cfg);

    // A tree with nested folders and the sizes S3 tools trip on.
    let src = home.path().join("src");
    write(&src.join("empty.bin"), b"");
    write(&src.join("one.bin"), b"x");
    write(&src.join("nested/a/five.bin"), &random((5 << 20) + 1, 1));
    write(&src.join("nested/b/big.bin"), &random(64 << 20, 2));
    write(&src.join("nested/name with spaces & ü+.txt"), b"odd names travel too");
    succeeded(
        &rclone(&gw, &key, home.path(), &["mkdir", "dk:backup"]).await,
        "rclone mkdir",
    );
    succeeded(
        &rclone(
            &gw,
            &key,
            home.path(),
            &["copy", src.to_str().unwrap(), "dk:backup/tree"],
        )
        .await,
        "rclone copy",
    );
    let check = rclone(
        &gw,
        &key,
        home.path(),
        &["check", src.to_str().unwrap(), "dk:backup/tree"],
    )
    .await;
    succeeded(&check, "rclone check");
    assert!(
        !said(&check).contains("could not be checked"),
        "MD5s were compared: {}",
        said(&check)
    );

    // The objects are the account's files, under the same paths.
    let got = home.path().join("five.bin");
    ok(
        &disktro(
            &cfg,
            None,
            &[
                "download",
                "/backup/tree/nested/a/five.bin",
                "-o",
                got.to_str().unwrap(),
            ],
            None,
        )
        .await,
        "disktro download of an object by its path",
    );
    assert_eq!(std::fs::read(&got).unwrap(), random((5 << 20) + 1, 1));
    ok(
        &disktro(&cfg, None, &["mkdir", "/backup/made-by-the-cli"], None).await,
        "mkdir",
    );
    let dirs = rclone(&gw, &key, home.path(), &["lsf", "--dirs-only", "dk:backup"]).await;
    succeeded(&dirs, "rclone lsf");
    assert!(said(&dirs).contains("made-by-the-cli/"), "{}", said(&dirs));

    // Sync with a deletion and an addition, then everything back, byte for byte.
    std::fs::remove_file(src.join("one.bin")).unwrap();
    write(&src.join("nested/a/new.txt"), b"added after the first copy");
    succeeded(
        &rclone(
            &gw,
            &key,
            home.path(),
            &["sync", src.to_str().unwrap(), "dk:backup/tree"],
        )
        .await,
        "rclone sync",
    );
    succeeded(
        &rclone(
            &gw,
            &key,
            home.path(),
            &["check", src.to_str().unwrap(), "dk:backup/tree"],
        )
        .await,
        "rclone check after sync",
    );
    let gone = disktro(&cfg, None, &["download", "/backup/tree/one.bin", "-o", "-"], None).await;
    assert_eq!(
        gone.status.code(),
        Some(3),
        "a synced deletion leaves no file: {}",
        stderr(&gone)
    );
    let back = home.path().join("back");
    succeeded(
        &rclone(
            &gw,
            &key,
            home.path(),
            &["copy", "dk:backup/tree", back.to_str().unwrap()],
        )
        .await,
        "rclone copy back",
    );
    assert_eq!(tree_of(&back), tree_of(&src));

    // The aws CLI: 200 MiB through a multipart upload (8 MiB parts), back, listed, a range.
    let big = random(200 << 20, 3);
    write(&home.path().join("200.bin"), &big);
    let up = home.path().join("200.bin");
    succeeded(
        &aws(
            &gw,
            &key,
            home.path(),
            &["s3", "cp", up.to_str().unwrap(), "s3://backup/large/200.bin"],
        )
        .await,
        "aws s3 cp up",
    );
    // S3's multipart ETag: 25 parts of 8 MiB.
    let head = aws(
        &gw,
        &key,
        home.path(),
        &["s3api", "head-object", "--bucket", "backup", "--key", "large/200.bin"],
    )
    .await;
    succeeded(&head, "aws s3api head-object");
    assert!(said(&head).contains("-25\\\""), "a multipart ETag: {}", said(&head));
    let down = home.path().join("200.back");
    succeeded(
        &aws(
            &gw,
            &key,
            home.path(),
            &["s3", "cp", "s3://backup/large/200.bin", down.to_str().unwrap()],
        )
        .await,
        "aws s3 cp down",
    );
    assert!(
        std::fs::read(&down).unwrap() == big,
        "the 200 MiB object came back different"
    );
    let ls = aws(&gw, &key, home.path(), &["s3", "ls", "s3://backup/tree/"]).await;
    succeeded(&ls, "aws s3 ls");
    assert!(
        said(&ls).contains("PRE nested/") && said(&ls).contains("empty.bin"),
        "{}",
        said(&ls)
    );
    let ls = aws(
        &gw,
        &key,
        home.path(),
        &["s3", "ls", "--recursive", "s3://backup/tree/nested/a/"],
    )
    .await;
    succeeded(&ls, "aws s3 ls --recursive");
    assert!(
        said(&ls).contains("tree/nested/a/five.bin") && !said(&ls).contains("big.bin"),
        "{}",
        said(&ls)
    );
    // Across the first chunk boundary (4 MiB).
    let part = home.path().join("range.bin");
    succeeded(
        &aws(
            &gw,
            &key,
            home.path(),
            &[
                "s3api",
                "get-object",
                "--bucket",
                "backup",
                "--key",
                "large/200.bin",
                "--range",
                "bytes=4194000-4195999",
                part.to_str().unwrap(),
            ],
        )
        .await,
        "aws s3api get-object --range",
    );
    assert_eq!(std::fs::read(&part).unwrap(), &big[4_194_000..4_196_000]);

    // Refusals: a wrong Content-MD5 stores nothing; a wrong secret and a revoked key are refused.
    let small = home.path().join("small.txt");
    write(&small, b"checked on the way in");
    let bad_md5 = aws(
        &gw,
        &key,
        home.path(),
        &[
            "s3api",
            "put-object",
            "--bucket",
            "backup",
            "--key",
            "checked.txt",
            "--body",
            small.to_str().unwrap(),
            "--content-md5",
            "AAAAAAAAAAAAAAAAAAAAAA==",
        ],
    )
    .await;
    assert!(
        !bad_md5.status.success() && said(&bad_md5).contains("BadDigest"),
        "{}",
        said(&bad_md5)
    );
    let head = aws(
        &gw,
        &key,
        home.path(),
        &["s3api", "head-object", "--bucket", "backup", "--key", "checked.txt"],
    )
    .await;
    assert!(!head.status.success(), "a refused body left an object: {}", said(&head));
    let wrong = Credentials {
        secret: "not-the-secret".into(),
        ..key.clone()
    };
    let refused = aws(&gw, &wrong, home.path(), &["s3", "ls", "s3://backup/"]).await;
    assert!(said(&refused).contains("SignatureDoesNotMatch"), "{}", said(&refused));
    ok(
        &disktro(&cfg, None, &["gateway", "keys", "rm", &key.id], None).await,
        "gateway keys rm",
    );
    let revoked = aws(&gw, &key, home.path(), &["s3", "ls", "s3://backup/"]).await;
    assert!(said(&revoked).contains("InvalidAccessKeyId"), "{}", said(&revoked));
}
