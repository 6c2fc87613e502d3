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

/// A new account logged in under `cfg`, with an access key made by `gateway keys create --json`.
async fn account_with_key(net: &Network, cfg: &Path, email: &str) -> Credentials {
    sign_up(net, cfg, email).await;
    let made = disktro(cfg, None, &["gateway", "keys", "create", "--json"], None).await;
    ok(&made, "gateway keys create");
    let made: serde_json::Value = serde_json::from_str(&stdout(&made)).unwrap();
    Credentials {
        id: made["access_key_id"].as_str().unwrap().to_owned(),
        secret: made["secret_access_key"].as_str().unwrap().to_owned(),
    }
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
    let key = account_with_key(&net, &cfg, "s3@example.org").await;
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

/// `aws s3api`'s answer as JSON.
fn json_of(o: &Output, what: &str) -> serde_json::Value {
    succeeded(o, what);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {}", said(o)))
}

/// One multipart upload driven part by part with `aws s3api`, as a tool that resends or leaves
/// out parts would.
struct Multipart<'a> {
    gw: &'a GatewayProcess,
    key: &'a Credentials,
    home: &'a Path,
    object: String,
    id: String,
    sent: Vec<(u32, String)>,
}

impl<'a> Multipart<'a> {
    async fn create(gw: &'a GatewayProcess, key: &'a Credentials, home: &'a Path, object: &str) -> Self {
        let made = aws(
            gw,
            key,
            home,
            &["s3api", "create-multipart-upload", "--bucket", "parts", "--key", object],
        )
        .await;
        let id = json_of(&made, "create-multipart-upload")["UploadId"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            gw,
            key,
            home,
            object: object.to_owned(),
            id,
            sent: Vec::new(),
        }
    }

    /// Send part `number`; the ETag is kept for Complete (the latest per number).
    async fn part(&mut self, number: u32, bytes: &[u8]) {
        let file = self.home.join(format!("part-{}-{number}", self.id));
        write(&file, bytes);
        let n = number.to_string();
        let sent = aws(
            self.gw,
            self.key,
            self.home,
            &[
                "s3api",
                "upload-part",
                "--bucket",
                "parts",
                "--key",
                &self.object,
                "--upload-id",
                &self.id,
                "--part-number",
                &n,
                "--body",
                file.to_str().unwrap(),
            ],
        )
        .await;
        let etag = json_of(&sent, "upload-part")["ETag"].as_str().unwrap().to_owned();
        self.sent.retain(|(m, _)| *m != number);
        self.sent.push((number, etag));
        self.sent.sort();
    }

    /// Complete with `numbers` of the parts sent; the object's ETag.
    async fn complete(&self, numbers: &[u32]) -> String {
        let parts: Vec<serde_json::Value> = self
            .sent
            .iter()
            .filter(|(n, _)| numbers.contains(n))
            .map(|(n, etag)| serde_json::json!({"PartNumber": n, "ETag": etag}))
            .collect();
        let list = self.home.join(format!("complete-{}.json", self.id));
        std::fs::write(&list, serde_json::json!({ "Parts": parts }).to_string()).unwrap();
        let arg = format!("file://{}", list.display());
        let done = aws(
            self.gw,
            self.key,
            self.home,
            &[
                "s3api",
                "complete-multipart-upload",
                "--bucket",
                "parts",
                "--key",
                &self.object,
                "--upload-id",
                &self.id,
                "--multipart-upload",
                &arg,
            ],
        )
        .await;
        json_of(&done, "complete-multipart-upload")["ETag"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn read_back(&self) -> Vec<u8> {
        let out = self.home.join(format!("read-{}", self.id));
        let got = aws(
            self.gw,
            self.key,
            self.home,
            &[
                "s3api",
                "get-object",
                "--bucket",
                "parts",
                "--key",
                &self.object,
                out.to_str().unwrap(),
            ],
        )
        .await;
        succeeded(&got, "get-object");
        std::fs::read(out).unwrap()
    }
}

/// Tried, with `aws s3api` part by part: (a) two 5 MiB parts sent and the workers' ingress read
/// before a 1 MiB third part and Complete; (b) part 1 sent again with other bytes after it had
/// gone on to the workers, then Complete with the new part 1; (c) three parts, Complete with
/// parts 1 and 3 only; (d) a part, then Abort; (e) 6 MiB in two parts with 60 MB of quota left.
/// Must hold: (a) the first two chunks reached the workers before Complete (the upload goes on
/// while parts arrive) and the object reads back as the three parts, with S3's multipart ETag; (b) and (c) read back as exactly the parts chosen
/// (Complete uploads from the spool when the parts sent on are not the ones chosen); (d) leaves
/// no object and no upload open at the server, and nothing of the stopped uploads stays open;
/// (e) an account too near its quota for the assembly's first plan (16 chunks) but not for the
/// object still completes (from the spool).
#[tokio::test(flavor = "multi_thread")]
async fn multipart_uploads_go_on_while_parts_arrive_and_complete_with_exactly_the_parts_chosen() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cfg");
    let key = account_with_key(&net, &cfg, "parts@example.org").await;
    let gw = GatewayProcess::start(&cfg);
    succeeded(
        &aws(&gw, &key, home.path(), &["s3", "mb", "s3://parts"]).await,
        "aws s3 mb",
    );
    let (one, two, three) = (random(5 << 20, 11), random(5 << 20, 12), random(1 << 20, 13));

    // (a) Sent on as the parts arrive.
    let mut a = Multipart::create(&gw, &key, home.path(), "dir/a.bin").await;
    let before = net.ingress().await;
    a.part(1, &one).await;
    a.part(2, &two).await;
    let sent = net.ingress().await - before;
    assert!(
        sent >= 8 << 20,
        "two chunks' shards reached the workers before Complete: {sent} bytes"
    );
    a.part(3, &three).await;
    let etag = a.complete(&[1, 2, 3]).await;
    assert!(etag.ends_with("-3\""), "S3's multipart ETag: {etag}");
    assert!(
        a.read_back().await == [&one[..], &two, &three].concat(),
        "(a) came back different"
    );

    // (b) Part 1 sent again after it went on.
    let mut b = Multipart::create(&gw, &key, home.path(), "b.bin").await;
    b.part(1, &one).await;
    b.part(2, &three).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    b.part(1, &two).await;
    b.complete(&[1, 2]).await;
    assert!(
        b.read_back().await == [&two[..], &three].concat(),
        "(b) is not the last part 1 and part 2"
    );

    // (c) A part left out.
    let mut c = Multipart::create(&gw, &key, home.path(), "c.bin").await;
    c.part(1, &one).await;
    c.part(2, &two).await;
    c.part(3, &three).await;
    let etag = c.complete(&[1, 3]).await;
    assert!(etag.ends_with("-2\""), "two parts chosen: {etag}");
    assert!(
        c.read_back().await == [&one[..], &three].concat(),
        "(c) is not parts 1 and 3"
    );

    // (d) Aborted.
    let mut d = Multipart::create(&gw, &key, home.path(), "d.bin").await;
    d.part(1, &one).await;
    succeeded(
        &aws(
            &gw,
            &key,
            home.path(),
            &[
                "s3api",
                "abort-multipart-upload",
                "--bucket",
                "parts",
                "--key",
                "d.bin",
                "--upload-id",
                &d.id,
            ],
        )
        .await,
        "abort-multipart-upload",
    );
    let head = aws(
        &gw,
        &key,
        home.path(),
        &["s3api", "head-object", "--bucket", "parts", "--key", "d.bin"],
    )
    .await;
    assert!(!head.status.success(), "an aborted upload leaves no object");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&net.ctx.db.pool)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} uploads still open after Complete and Abort"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // (e) Too near the quota for the assembly's first plan (16 chunks), not for the object.
    sqlx::query("UPDATE accounts SET quota_bytes = used_bytes + 60000000")
        .execute(&net.ctx.db.pool)
        .await
        .unwrap();
    let mut e = Multipart::create(&gw, &key, home.path(), "e.bin").await;
    e.part(1, &one).await;
    e.part(2, &three).await;
    e.complete(&[1, 2]).await;
    assert!(
        e.read_back().await == [&one[..], &three].concat(),
        "(e) came back different"
    );
}

/// File listings the server has answered so far (`GET /api/v1/files`, from its metrics).
async fn listings_served(net: &Network) -> u64 {
    let text = reqwest::get(format!("{}/metrics", net.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("disktro_http_requests_total{")
                && l.contains("route=\"/api/v1/files\"")
                && l.contains("method=\"GET\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Tried: rclone copies 300 small files into one folder, then again after 20 of them changed.
/// Must hold: the server is asked for file listings far fewer times than objects are stored
/// (the gateway keeps each folder's names between requests; without that every PUT read and
/// opened the whole folder, n²/2 names for n objects); the objects replaced are replaced, not
/// doubled, and rclone check finds every object byte-identical.
#[tokio::test(flavor = "multi_thread")]
async fn many_objects_in_one_folder_do_not_each_read_the_whole_folder() {
    let net = Network::start(10).await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cfg");
    let key = account_with_key(&net, &cfg, "many@example.org").await;
    let gw = GatewayProcess::start(&cfg);
    let src = home.path().join("many");
    for i in 0..300u32 {
        write(&src.join(format!("f{i:03}.txt")), format!("object {i}\n").as_bytes());
    }
    let src_arg = src.to_str().unwrap();
    succeeded(
        &rclone(&gw, &key, home.path(), &["mkdir", "dk:many"]).await,
        "rclone mkdir",
    );
    let before = listings_served(&net).await;
    succeeded(
        &rclone(&gw, &key, home.path(), &["copy", src_arg, "dk:many/one"]).await,
        "rclone copy",
    );
    let first = listings_served(&net).await - before;
    assert!(
        first < 100,
        "{first} file listings served for 300 objects stored in one folder"
    );
    for i in 0..20u32 {
        write(
            &src.join(format!("f{i:03}.txt")),
            format!("object {i}, changed\n").as_bytes(),
        );
    }
    succeeded(
        &rclone(&gw, &key, home.path(), &["copy", src_arg, "dk:many/one"]).await,
        "rclone copy of the changes",
    );
    succeeded(
        &rclone(&gw, &key, home.path(), &["check", src_arg, "dk:many/one"]).await,
        "rclone check",
    );
    let listed = disktro(&cfg, None, &["--json", "ls", "/many/one"], None).await;
    ok(&listed, "disktro ls");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(
        listed["files"].as_array().unwrap().len(),
        300,
        "a changed object replaces the old one"
    );
}
