//! Shared set-up of the API tests: a real server on port 0 over a fresh database (a SQLite
//! file in a temp dir, or a PostgreSQL database made for the test and dropped after it),
//! an approved merchant with a till, keys, and funded customers, all made through the API.
//!
//! Every test runs on both backends through [`on_both!`]. Without a reachable PostgreSQL
//! the PostgreSQL half skips with a message, unless `CI=true`, where it fails.

#![allow(dead_code)]

use saoma_api as api;
use saoma_client::{Client, Credentials};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Generates, for each named `async fn(Db)`, a test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::common::Db::sqlite()).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = super::common::Db::postgres().await {
                    super::$name(db).await
                }
            })*
        }
    };
}

/// Tests that need several nodes, which only PostgreSQL serves (the embedded SQLite
/// database is one node's): generated for PostgreSQL only, so no SQLite test passes
/// without running. Without a reachable PostgreSQL they skip with a message (fail under
/// `CI=true`), like the PostgreSQL half of `on_both!`.
#[allow(unused_macros)]
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = super::common::Db::postgres().await {
                    super::$name(db).await
                }
            })*
        }
    };
}

/// A fresh database for one test; dropped (PostgreSQL) or deleted (SQLite) with it.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database, dropped with this.
    postgres: Option<saoma_store::TestDatabase>,
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Db { url, _dir: Some(dir), postgres: None }
    }

    /// A new database on the test PostgreSQL server, or `None` (skip) when none is reachable
    /// outside CI.
    pub async fn postgres() -> Option<Db> {
        let name = format!("saoma_t_{}", ulid::Ulid::new().to_string().to_lowercase());
        let db = saoma_store::test_postgres_database(&name).await?;
        Some(Db { url: db.url.clone(), _dir: None, postgres: Some(db) })
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

pub fn config(db: &Db) -> saoma_server::Config {
    saoma_server::Config {
        admin_token: Some(ADMIN_TOKEN.into()),
        webhook_allow_private: true,
        webhook_retry_delays: vec![std::time::Duration::from_millis(200); 3],
        settle_daily: false,
        master_key: Some(TEST_MASTER_KEY.into()),
        settle_open_days: true,
        ..saoma_server::Config::new(&db.url)
    }
}

/// A node with production defaults (https-only public webhooks, closed days only for
/// settlement) on `db`, its admin client, and an approved merchant named `name`.
pub async fn production_node(db: &Db, name: &str) -> (saoma_server::RunningServer, Client, api::Merchant) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = saoma_server::Config {
        admin_token: Some(ADMIN_TOKEN.into()),
        master_key: Some(TEST_MASTER_KEY.into()),
        ..saoma_server::Config::new(&db.url)
    };
    let server = saoma_server::start(config, listener).await.unwrap();
    let admin = Client::new(&server.url(), Credentials::Admin(ADMIN_TOKEN.into()));
    let m = admin.create_merchant(&merchant_req(name)).await.unwrap();
    admin.approve_merchant(&m.id).await.unwrap();
    (server, admin, m)
}

pub struct World {
    pub server: saoma_server::RunningServer,
    pub db: Db,
    pub admin: Client,
    pub merchant_id: String,
    pub merchant: Client,
    pub till: Client,
    pub till_id: String,
    pub other_till: Client,
    pub customers: Vec<(String, String)>, // (id, phone)
}

pub const PIN: &str = "123456";

/// The master key every test node of a database shares.
pub const TEST_MASTER_KEY: &str = "5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a5a0a";

impl World {
    pub async fn new(db: Db, customers: usize, balance: i64) -> World {
        let config = config(&db);
        World::with_config(db, customers, balance, config).await
    }

    /// A world whose server runs with `config`.
    pub async fn with_config(db: Db, customers: usize, balance: i64, config: saoma_server::Config) -> World {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = saoma_server::start(config, listener).await.unwrap();
        let url = server.url();
        let admin = Client::new(&url, Credentials::Admin(ADMIN_TOKEN.into()));
        let m = admin.create_merchant(&merchant_req("Tea House")).await.unwrap();
        admin.approve_merchant(&m.id).await.unwrap();
        let key =
            |k: api::KeyCreated| Client::new(&url, Credentials::Key { key_id: k.key_id, secret: k.secret });
        let t1 = admin.create_terminal(&m.id, "Till 1").await.unwrap();
        let t2 = admin.create_terminal(&m.id, "Till 2").await.unwrap();
        let merchant = key(admin.create_key(&m.id, None).await.unwrap());
        let till = key(admin.create_key(&m.id, Some(&t1.id)).await.unwrap());
        let other_till = key(admin.create_key(&m.id, Some(&t2.id)).await.unwrap());
        let mut cs = Vec::new();
        for i in 0..customers {
            let phone = format!("1390000{i:04}");
            let c = admin.create_customer(&phone, &format!("Customer {i}"), PIN).await.unwrap();
            if balance > 0 {
                admin.top_up(&c.id, balance, "CNY", &format!("seed-{i}")).await.unwrap();
            }
            cs.push((c.id, phone));
        }
        World {
            server,
            db,
            admin,
            merchant_id: m.id,
            merchant,
            till,
            till_id: t1.id,
            other_till,
            customers: cs,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn wallet(&self, i: usize) -> Client {
        Client::new(&self.url(), Credentials::None).wallet_session(&self.customers[i].1, PIN).await.unwrap()
    }

    pub async fn assert_balanced(&self) {
        let tb = self.admin.trial_balance().await.unwrap();
        assert!(tb.balanced, "trial balance off: {tb:?}");
    }

    pub async fn balance(&self, i: usize) -> i64 {
        let w = self.wallet(i).await.wallet().await.unwrap();
        w.balances.iter().find(|b| b.currency == "CNY").map_or(0, |b| b.available)
    }
}

pub fn merchant_req(name: &str) -> api::CreateMerchantRequest {
    api::CreateMerchantRequest {
        name: name.into(),
        mcc: "5812".into(),
        city: "Hangzhou".into(),
        country: "CN".into(),
        currency: "CNY".into(),
        fee_bps: 60,
        timezone: None,
    }
}

pub fn charge(otn: &str, amount: i64, code: Option<&str>) -> api::CreatePaymentRequest {
    api::CreatePaymentRequest {
        out_trade_no: otn.into(),
        amount,
        currency: "CNY".into(),
        subject: "Oolong tea".into(),
        items: Some(vec![api::Item {
            sku: Some("T1".into()),
            name: "Oolong".into(),
            quantity: 1,
            unit_amount: amount,
        }]),
        payment_code: code.map(str::to_string),
        expires_in: None,
    }
}

/// The first column of every row a query returns, read straight from the database.
pub async fn column(db: &Db, sql: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&pool).await.unwrap();
    pool.close().await;
    rows.into_iter().map(|r| r.0).collect()
}

/// Runs one statement straight on the database (to set up what the API cannot, such as
/// rows that share a timestamp).
pub async fn exec(db: &Db, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
    pool.close().await;
}
