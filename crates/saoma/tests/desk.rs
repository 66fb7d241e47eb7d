//! `saoma admin` desk commands against a running server: an admin adds a risk officer,
//! whose token freezes a wallet but may not reject a merchant (exit 1, the refusal on
//! stderr).

use saoma_client::{Client, Credentials};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_act_from_the_command_line_within_their_role() {
    let dir = tempfile::tempdir().unwrap();
    let config = saoma_server::Config {
        admin_token: Some("root-token".into()),
        master_key: Some("cd".repeat(32)),
        ..saoma_server::Config::new(&format!("sqlite://{}", dir.path().join("t.db").display()))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = saoma_server::start(config, listener).await.unwrap();
    let url = server.url();
    let admin = Client::new(&url, Credentials::Admin("root-token".into()));
    let c = admin.create_customer("13700000009", "Bo", "135790").await.unwrap();
    let saoma = |token: &str, args: &[&str]| {
        let url = url.clone();
        let token = token.to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            Command::new(env!("CARGO_BIN_EXE_saoma"))
                .arg("admin")
                .args(&args)
                .env("SAOMA_URL", url)
                .env("SAOMA_ADMIN_TOKEN", token)
                .output()
                .unwrap()
        })
        .join()
        .unwrap()
    };
    let out = saoma("root-token", &["add-operator", "--name", "Wu", "--role", "risk_officer"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let risk_token = op["token"].as_str().unwrap();

    let out = saoma(risk_token, &["freeze", &c.id, "--reason", "card reported stolen"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let frozen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(frozen["frozen"], true);

    let out = saoma(risk_token, &["reject", "mch_nobody", "--reason", "no"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
    server.stop().await.unwrap();
}
