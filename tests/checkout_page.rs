//! The hosted checkout page in a real browser: headless Debian Chromium driven over WebDriver
//! (chromedriver on a loopback port, fantoccini), against a real gateway, a real merchant (its
//! own Merchant Gateway, `create_checkout`) and the real wallet core. Covers: the page shows
//! the merchant, items and total; its QR code scans to the checkout link; a wallet pays it and
//! the browser lands on the merchant's success page while the merchant holds the proof; a
//! decline and an expiry send the browser to the cancel page; an expired or unknown session is
//! a 410 / 404 page; merchant-supplied markup is shown as text and never runs.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`: `scripts/ensure-chromium.sh`
//! installs them (scripts/test.sh runs it). Without them these tests FAIL, never skip.
//! Artifacts: `target/checkout-page.png` (desktop), `target/checkout-page-phone.png` (phone
//! width) and `target/checkout-page-markup.png` (the hostile merchant, rendered as text).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use opencharge_merchant::{NewItem, NewOrder};
use opencharge_testkit::{Network, GATEWAY_OCID as GATEWAY, WAIT};
use opencharge_wallet::{PaymentFlow, PaymentStatus, ScanResult};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser at a time: two cores, and each test starts its own chromedriver and Chromium.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// Browser harness
// ---------------------------------------------------------------------------------------------

/// A chromedriver child process, killed (by its own pid) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails (never skips) when the Debian packages are missing.
fn require_chromium() {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: the checkout page browser tests need Debian's chromium and \
             chromium-driver packages; run scripts/ensure-chromium.sh (scripts/test.sh does)"
        );
    }
}

async fn start_driver() -> Driver {
    require_chromium();
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await {
            if let Ok(body) = response.json::<Value>().await {
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not become ready on {}",
            driver.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts chromedriver and a fresh headless Chromium (new profile in a temp dir), runs `body`
/// with the WebDriver client, then always closes the browser and stops the driver, even when
/// `body` panics (the panic is passed on afterwards).
async fn with_browser<F, Fut>(body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _one_at_a_time = BROWSER_LOCK.lock().await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--lang=en-US",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    // An alert a page opened stays open, so the tests can see it (and fail on it).
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
    let outcome = tokio::spawn(body(client.clone())).await;
    let _ = client.close().await;
    drop(driver);
    drop(profile);
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("browser test task failed: {e}"),
        }
    }
}

/// Waits until the browser's current URL is `want` (a redirect happened).
async fn wait_for_url(client: &Client, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = client.current_url().await.unwrap();
        if now.as_str() == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the browser stayed on {now}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The visible text of the element matched by `css`, with no-break spaces as plain spaces.
async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .text()
        .await
        .unwrap()
        .replace('\u{a0}', " ")
}

/// Waits until the page's `#status` text contains `needle`.
async fn wait_for_status(client: &Client, needle: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = text_of(client, "#status").await;
        if text.contains(needle) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status stayed {text:?}, expected {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where test artifacts go: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Decodes the QR code in a PNG screenshot of the QR element.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let luma = |x: usize, y: usize| -> u8 {
        let i = (y * w + x) * channels;
        if channels >= 3 {
            ((u32::from(buf[i]) + u32::from(buf[i + 1]) + u32::from(buf[i + 2])) / 3) as u8
        } else {
            buf[i]
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
    let grids = image.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "expected one QR code in the page's QR element"
    );
    grids[0].decode().unwrap().1
}

// ---------------------------------------------------------------------------------------------
// The merchant's web shop: success and cancel pages (and an icon) on loopback
// ---------------------------------------------------------------------------------------------

/// A tiny web shop on loopback serving `/shop/ok`, `/shop/cancel` and `/shop/icon.svg`, so the
/// browser's redirect really lands on a page.
struct Shop {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Shop {
    async fn start() -> Shop {
        let page = |title: &'static str| {
            move || async move {
                (
                    [(CONTENT_TYPE, "text/html; charset=utf-8")],
                    format!(
                        "<!doctype html><html lang=\"en\"><head><title>{title}</title></head>\
                         <body><h1 id=\"shop\">{title}</h1></body></html>"
                    ),
                )
            }
        };
        let icon = || async {
            (
                [(CONTENT_TYPE, "image/svg+xml")],
                "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 56 56\">\
                 <rect width=\"56\" height=\"56\" rx=\"12\" fill=\"#6b3e26\"/>\
                 <circle cx=\"28\" cy=\"30\" r=\"13\" fill=\"#f2e3c9\"/></svg>",
            )
        };
        let app = Router::new()
            .route("/shop/ok", get(page("Thank you for your order")))
            .route("/shop/cancel", get(page("Payment cancelled")))
            .route("/shop/icon.svg", get(icon));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Shop { base, task }
    }

    fn success(&self) -> String {
        format!("{}/shop/ok", self.base)
    }

    fn cancel(&self) -> String {
        format!("{}/shop/cancel", self.base)
    }

    fn icon(&self) -> String {
        format!("{}/shop/icon.svg", self.base)
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway and a merchant with a chosen display name and icon (the default network names
/// its merchant "Test Coffee").
async fn named_network(name: &str, icon: Option<String>) -> Network {
    let name = name.to_string();
    Network::builder()
        .merchant_config(move |_, config| {
            config.name = name.clone();
            config.icon = icon.clone();
        })
        .start()
        .await
        .unwrap()
}

/// A checkout of the common order (2 × Coffee 2.50 + Cake 3.25 = 8.25 USD) returning to `shop`.
async fn checkout(env: &Network, shop: &Shop) -> (String, String) {
    let order = env.order().unwrap();
    let created = env
        .merchant()
        .create_checkout(GATEWAY, &order.order.id, &shop.success(), &shop.cancel())
        .await
        .unwrap();
    (order.order.id, created.checkout_url)
}

async fn get_html(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .get(url)
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_in_the_wallet_the_browser_lands_on_the_success_page() {
    let env = Network::start().await.unwrap();
    let shop = Shop::start().await;
    let (wallet, _) = env.wallet("carol", Some("20.00")).await.unwrap();
    let (order_id, checkout_url) = checkout(&env, &shop).await;
    assert!(checkout_url.starts_with(&format!("{}/checkout/cs_", env.endpoint())));

    // API clients keep the JSON view of the same URL; browsers get HTML with a strict CSP.
    let view: Value = env
        .http
        .get(&checkout_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["merchant"]["name"], "Test Coffee");
    assert_eq!(view["status"], "pending");
    let (status, headers, html) = get_html(&checkout_url).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"));
    assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(!html.contains("<script>"), "no inline script");

    let expected_deep_link = format!(
        "opencharge://checkout?url={}",
        url::form_urlencoded::byte_serialize(checkout_url.as_bytes()).collect::<String>()
    );
    let success = shop.success();
    let browser_url = checkout_url.clone();
    let shop_host = shop.base.trim_start_matches("http://").to_string();
    let screenshots = target_dir();
    let (prompt_tx, prompt_rx) = tokio::sync::oneshot::channel::<String>();
    let (paid_tx, paid_rx) = tokio::sync::oneshot::channel::<()>();
    let wallet_side = {
        let wallet = wallet.clone();
        let success = success.clone();
        tokio::spawn(async move {
            // The wallet opens exactly what the browser's QR code says.
            let scanned = prompt_rx.await.unwrap();
            let prompt = wallet.open_checkout(scanned).await.unwrap();
            assert_eq!(prompt.flow, PaymentFlow::Checkout);
            assert_eq!(prompt.merchant_name.as_deref(), Some("Test Coffee"));
            assert_eq!(
                (prompt.total.amount.as_str(), prompt.total.currency.as_str()),
                ("8.25", "USD")
            );
            let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
            assert_eq!(receipt.status, PaymentStatus::Paid);
            assert_eq!(receipt.redirect_url.as_deref(), Some(success.as_str()));
            let _ = paid_tx.send(());
            receipt
        })
    };

    with_browser(move |client| async move {
        client.goto(&browser_url).await.unwrap();
        assert_eq!(text_of(&client, "#merchant-name").await, "Test Coffee");
        assert_eq!(text_of(&client, "#total").await, "8.25 USD");
        assert_eq!(text_of(&client, "#items-total").await, "8.25 USD");
        let rows = client
            .find_all(Locator::Css("#items tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let row0 = rows[0].text().await.unwrap().replace('\u{a0}', " ");
        let row1 = rows[1].text().await.unwrap().replace('\u{a0}', " ");
        assert!(row0.contains("Coffee") && row0.contains("2.50 USD each") && row0.contains("5.00 USD"), "{row0}");
        assert!(row1.contains("Cake") && row1.contains("3.25 USD"), "{row1}");
        assert!(text_of(&client, "#status").await.starts_with("Waiting for payment"));
        let countdown = text_of(&client, "#countdown").await;
        assert!(
            countdown.contains(':') && countdown != "0:00",
            "countdown {countdown:?}"
        );
        let note = text_of(&client, "#return-note").await;
        assert!(note.contains("Test Coffee") && note.contains(&shop_host), "{note}");
        let deep = client
            .find(Locator::Css("#open-in-wallet"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap();
        assert_eq!(deep.as_deref(), Some(expected_deep_link.as_str()));
        let lang = client
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap();
        assert_eq!(lang, json!("en"));
        // Keyboard order: "Open in wallet", then the way back; nothing reorders focus.
        let focusable = client
            .execute(
                "return Array.from(document.querySelectorAll('a[href], button, input, [tabindex]'))\
                 .map(e => e.id + (e.hasAttribute('tabindex') ? '!' : ''))",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(focusable, json!(["open-in-wallet", "return-link"]));
        let live = client
            .find(Locator::Css("#status"))
            .await
            .unwrap()
            .attr("aria-live")
            .await
            .unwrap();
        assert_eq!(live.as_deref(), Some("polite"));

        // Screenshots: desktop, then phone width (nothing may overflow sideways there).
        std::fs::create_dir_all(&screenshots).unwrap();
        client.set_window_size(1100, 960).await.unwrap();
        std::fs::write(
            screenshots.join("checkout-page.png"),
            client.screenshot().await.unwrap(),
        )
        .unwrap();
        client.set_window_size(390, 1500).await.unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "the page scrolls sideways at phone width");
        std::fs::write(
            screenshots.join("checkout-page-phone.png"),
            client.screenshot().await.unwrap(),
        )
        .unwrap();
        client.set_window_size(1100, 820).await.unwrap();

        // The QR code the browser shows is the checkout link; hand it to the wallet.
        let qr = client
            .find(Locator::Css("#qr svg"))
            .await
            .unwrap()
            .screenshot()
            .await
            .unwrap();
        let scanned = decode_qr(&qr);
        assert_eq!(scanned, browser_url);
        prompt_tx.send(scanned).unwrap();
        paid_rx.await.unwrap();

        // The page notices by itself and leaves for the merchant's success page.
        wait_for_url(&client, &success).await;
        assert_eq!(
            text_of(&client, "#shop").await,
            "Thank you for your order"
        );
    })
    .await;

    let receipt = wallet_side.await.unwrap();
    let paid = env.merchant().wait_paid(&order_id, WAIT).await.unwrap();
    assert_eq!(paid.txid, receipt.txid, "the merchant received the proof");
    assert_eq!(env.usd(&wallet).await.unwrap(), "11.75");
    let status: Value = env
        .http
        .get(format!("{checkout_url}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "paid");
    assert_eq!(status["redirectUrl"], json!(shop.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_in_the_wallet_the_browser_lands_on_the_cancel_page() {
    let env = Network::start().await.unwrap();
    let shop = Shop::start().await;
    let (wallet, _) = env.wallet("dave", Some("20.00")).await.unwrap();
    let (order_id, checkout_url) = checkout(&env, &shop).await;
    let cancel = shop.cancel();
    let link = checkout_url.clone();
    with_browser(move |client| async move {
        client.goto(&link).await.unwrap();
        assert_eq!(text_of(&client, "#total").await, "8.25 USD");
        let cancel_href = client
            .find(Locator::Css("#return-link"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap();
        assert_eq!(cancel_href.as_deref(), Some(cancel.as_str()));
        // The wallet scans the plain link (what the QR code holds) and declines.
        let prompt = match wallet.scan(link.clone()).await.unwrap() {
            ScanResult::Prompt { prompt } => prompt,
            other => panic!("expected a prompt, got {other:?}"),
        };
        assert_eq!(prompt.flow, PaymentFlow::Checkout);
        let receipt = wallet
            .decline(prompt.prompt_id, Some("changed my mind".into()))
            .await
            .unwrap();
        assert_eq!(receipt.status, PaymentStatus::Declined);
        wait_for_status(&client, "declined").await;
        wait_for_url(&client, &cancel).await;
        assert_eq!(text_of(&client, "#shop").await, "Payment cancelled");
    })
    .await;
    assert!(env.merchant().proofs().is_empty(), "nothing was paid");
    let order = env.merchant().order(&order_id).unwrap().unwrap();
    assert!(order.txid.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_sends_the_browser_back_and_the_link_then_reads_410() {
    let env = Network::start().await.unwrap();
    let shop = Shop::start().await;
    let (_, checkout_url) = checkout(&env, &shop).await;
    let cancel = shop.cancel();
    let clock = env.clock.clone();
    let link = checkout_url.clone();
    let unknown = format!(
        "{}/checkout/cs_00000000000000000000000000000000",
        env.endpoint()
    );
    with_browser(move |client| async move {
        client.goto(&link).await.unwrap();
        assert!(text_of(&client, "#status")
            .await
            .starts_with("Waiting for payment"));
        // The gateway's clock jumps past the session's expiry (the order lives 300 s).
        clock.advance(3600);
        wait_for_url(&client, &cancel).await;

        // Opening the dead link again: a clear page, the way back, no stack trace.
        client.goto(&link).await.unwrap();
        assert_eq!(
            text_of(&client, "#page-title").await,
            "This checkout has expired"
        );
        assert_eq!(text_of(&client, "#merchant-name").await, "Test Coffee");
        let back = client
            .find(Locator::Css("#return-link"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap();
        assert_eq!(back.as_deref(), Some(cancel.as_str()));

        client.goto(&unknown).await.unwrap();
        assert_eq!(text_of(&client, "#page-title").await, "Checkout not found");
    })
    .await;

    let (status, headers, expired) = get_html(&checkout_url).await;
    assert_eq!(status, 410, "{expired}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(expired.contains("This checkout has expired"));
    assert!(expired.contains("nothing was charged"));
    let (status, headers, unknown) = get_html(&format!(
        "{}/checkout/cs_00000000000000000000000000000000",
        env.endpoint()
    ))
    .await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(unknown.contains("Checkout not found"));
    for page in [&expired, &unknown] {
        assert!(page.starts_with("<!doctype html>"), "{page}");
        assert!(
            !page.contains("panicked") && !page.contains("SESSION_") && !page.contains(".rs"),
            "internals leak into {page}"
        );
    }
    // The status endpoint agrees and names the way back.
    let status: Value = env
        .http
        .get(format!("{checkout_url}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "expired");
    assert_eq!(status["redirectUrl"], json!(shop.cancel()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_supplied_markup_is_shown_as_text_and_never_runs() {
    let shop = Shop::start().await;
    let evil_name = "Evil <script>alert(1)</script> Shop";
    let evil_item = "<img src=x onerror=alert(2)>";
    let env = named_network(evil_name, Some(shop.icon())).await;
    let order = env
        .merchant()
        .create_order(NewOrder {
            items: vec![NewItem {
                id: "x".into(),
                name: evil_item.into(),
                quantity: 3,
                price: "1000.10".into(),
            }],
            currency: "USD".into(),
            reference: Some("\"><script>alert(3)</script>".into()),
            memo: Some("</p><script>alert(4)</script>".into()),
        })
        .unwrap();
    // A javascript: redirect target is refused when the checkout is created (400
    // INVALID_REQUEST naming the field): it never reaches the page or a wallet.
    let refused = env
        .merchant()
        .create_checkout(
            GATEWAY,
            &order.order.id,
            &shop.success(),
            "javascript:alert(5)",
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("urls.cancel"), "{refused}");
    let created = env
        .merchant()
        .create_checkout(GATEWAY, &order.order.id, &shop.success(), &shop.cancel())
        .await
        .unwrap();
    let (status, headers, html) = get_html(&created.checkout_url).await;
    assert_eq!(status, 200);
    assert!(html.contains("Evil &lt;script&gt;alert(1)&lt;/script&gt; Shop"));
    assert!(!html.contains("<script>alert"), "raw markup in {html}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("img-src 'self' {};", shop.base)),
        "icon origin allowed: {csp}"
    );

    let link = created.checkout_url.clone();
    let cancel = shop.cancel();
    with_browser(move |client| async move {
        client.goto(&link).await.unwrap();
        assert_eq!(text_of(&client, "#merchant-name").await, evil_name);
        assert_eq!(text_of(&client, ".item-name").await, evil_item);
        assert_eq!(
            text_of(&client, "#order-reference").await,
            "\"><script>alert(3)</script>"
        );
        assert_eq!(text_of(&client, "#total").await, "3,000.30 USD");
        let shots = target_dir();
        std::fs::create_dir_all(&shots).unwrap();
        std::fs::write(
            shots.join("checkout-page-markup.png"),
            client.screenshot().await.unwrap(),
        )
        .unwrap();
        // No alert opened, and the only script element is the page's own file.
        assert!(
            client.get_alert_text().await.is_err(),
            "a merchant string ran as script"
        );
        let scripts = client
            .execute(
                "return Array.from(document.scripts).map(s => s.src + '|' + s.text)",
                vec![],
            )
            .await
            .unwrap();
        let scripts = scripts.as_array().unwrap();
        assert_eq!(scripts.len(), 1, "{scripts:?}");
        assert!(scripts[0]
            .as_str()
            .unwrap()
            .ends_with("/checkout-assets/page.js|"));
        assert_eq!(
            client
                .execute("return document.querySelectorAll('img[src=\"x\"]').length", vec![])
                .await
                .unwrap(),
            json!(0)
        );
        // The icon from verified metadata loaded under the CSP.
        let icon_width = client
            .execute(
                "const i = document.querySelector('img.merchant-icon'); return i && i.complete ? i.naturalWidth : -1",
                vec![],
            )
            .await
            .unwrap();
        assert!(icon_width.as_i64().unwrap() > 0, "icon not loaded: {icon_width}");
        // The merchant's (accepted, loopback) cancel URL is the only way back offered.
        let back = client
            .execute(
                "const a = document.getElementById('return-link'); return [a.hidden, a.href]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(back, json!([false, cancel]));
        assert!(client.get_alert_text().await.is_err());
    })
    .await;
    env.stop().await;
}
