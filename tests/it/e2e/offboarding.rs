//! The operator's data tools through the `herald` CLI on the local stack: a backup export of
//! the running deployment, a tenant's export (no token in it), and the tenant's erasure (its
//! key refused, its data gone from the API, its audit chains still verifying). The round trip
//! into an empty deployment is `store::backup` (the stack is shared and never empty).

use super::*;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = repo_root().join("target/tmp").join(unique(name));
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

/// Every file under `dir`, read as text.
fn contents(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.push_str(&contents(&path));
        } else {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

#[tokio::test]
async fn a_backup_and_a_tenants_export_and_erasure_run_from_the_cli() {
    let stack = Stack::running();
    let t = stack.tenant();
    let other = stack.tenant();
    let page = unique("page");
    let token = unique("fb-offboard-");
    let account = stack.connect(&t, "facebook", &page, &token).await;
    let post = stack.schedule(&t, &account, "to be erased", 86_400).await;
    let kept = stack
        .schedule(
            &other,
            &stack
                .connect(&other, "x", &unique("u"), &unique("xt-"))
                .await,
            "kept",
            86_400,
        )
        .await;

    // The whole deployment, as the runbook's export.
    let backup = scratch("backup-");
    let answer = &stack.cli(&["backup", "export", backup.to_str().unwrap()])[0];
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["tables"].as_array().is_some_and(|t| t.len() == 3),
        "{manifest} {answer}"
    );
    assert!(contents(&backup).contains(post["id"].as_str().unwrap()));

    // The tenant's own export: its post and account, never its token.
    let export = scratch("tenant-");
    stack.cli(&["tenant", "export", &t.id, export.to_str().unwrap()]);
    let exported = contents(&export);
    assert!(exported.contains(post["id"].as_str().unwrap()) && exported.contains(&page));
    assert!(!exported.contains(&token), "a token in the export");
    assert!(
        !exported.contains(&other.id),
        "another tenant in the export"
    );

    // Erased: the key is refused, the other tenant untouched, the chains still verify.
    stack.cli(&["tenant", "erase", &t.id, "--confirm", &t.id]);
    let (s, _, _) = stack.get("/v1/posts", &t).await;
    assert!(
        s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN,
        "{s}"
    );
    let still = stack.read_post(&other, kept["id"].as_str().unwrap()).await;
    assert_eq!(still["text"], "kept");
    let verdict = &stack.cli(&["audit", "verify", "--tenant", &t.id])[0];
    assert_eq!(verdict["ok"], true, "{verdict}");
    let log = stack.cli(&["audit", "list", "--tenant", &t.id, "--limit", "200"]);
    let text = serde_json::to_string(&log).unwrap();
    assert!(text.contains("tenant.erased"), "{text}");
    assert!(
        !text.contains(&page),
        "a platform account id left in the log"
    );
    std::fs::remove_dir_all(&backup).ok();
    std::fs::remove_dir_all(&export).ok();
}
