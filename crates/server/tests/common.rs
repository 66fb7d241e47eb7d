//! Shared set-up of the API tests: a real server on port 0 over a fresh SQLite file,
//! an approved merchant with a till, keys, and funded customers, all made through the API.

#![allow(dead_code)]

use saoma_api as api;
use saoma_client::{Client, Credentials};

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct World {
    pub server: saoma_server::RunningServer,
    pub _dir: tempfile::TempDir,
    pub admin: Client,
    pub merchant_id: String,
    pub merchant: Client,
    pub till: Client,
    pub till_id: String,
    pub other_till: Client,
    pub customers: Vec<(String, String)>, // (id, phone)
}

pub const PIN: &str = "123456";

impl World {
    pub async fn new(customers: usize, balance: i64) -> World {
        let dir = tempfile::tempdir().unwrap();
        let config = saoma_server::Config {
            database_url: format!("sqlite://{}", dir.path().join("t.db").display()),
            admin_token: Some(ADMIN_TOKEN.into()),
            public_scheme: "http".into(),
        };
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
            _dir: dir,
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
