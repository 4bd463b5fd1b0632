//! `folio serve` over real HTTP on loopback: the OpenAI chat endpoint whole and streamed, models,
//! health, metrics, every error status, capacity, client disconnects, shutdown, the line-model
//! rule, and the answer against `folio ocr`'s. The tiny random fixture model answers (its text is
//! noise, so texts are compared between paths, never to a truth).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine as _;
use candle_core::{DType, Device};
use common::{fixture_dir, line_model_fixture, whole_pages};
use folio::engine::{Engine, EngineConfig};
use folio::layout::WholePage;
use folio::models::paddleocr_vl::Checkpoint;
use folio::pipeline::page::read_pages;
use folio::pipeline::reader::ReadOptions;
use folio::server::{serve, AppState, Ready, ServerConfig};
use serde_json::{json, Value};

fn config() -> ServerConfig {
    ServerConfig {
        model_name: "tiny".into(),
        api_key: None,
        max_admitted: 64,
        max_body_bytes: 8 << 20,
        remote_images: None,
        default_max_tokens: 16,
        shutdown_grace: Duration::from_secs(10),
    }
}

fn ready(model_dir: &std::path::Path) -> Result<Ready> {
    let ck = Arc::new(Checkpoint::load(model_dir, DType::F32, &Device::Cpu)?);
    let engine = Arc::new(Engine::start(ck, EngineConfig { kv_cache_memory: 16 << 20, ..EngineConfig::default() })?);
    Ok(Ready { engine, detector: Arc::new(WholePage), read: ReadOptions { max_tokens: 4, ..ReadOptions::default() } })
}

/// A server on a loopback port of its own, on its own runtime thread.
struct Server {
    url: String,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Server {
    fn start(cfg: ServerConfig, ready: Option<Ready>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = AppState::new(cfg);
        if let Some(ready) = ready {
            state.set_ready(ready);
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            let served = rt.block_on(serve(listener, serving, async {
                let _ = rx.await;
            }));
            rt.shutdown_timeout(Duration::from_secs(5));
            served
        });
        Ok(Server { url, state, stop: Some(tx), thread: Some(thread) })
    }

    fn engine(&self) -> Result<Arc<Engine>> {
        self.state.engine().context("the server has no model")
    }

    /// Signals shutdown and waits for the server to return.
    fn stop(mut self) -> Result<()> {
        self.stop.take().map(|tx| tx.send(()));
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(served)) => served,
            Some(Err(_)) => bail!("the server thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take().map(|tx| tx.send(()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn png_data_url(w: u32, h: u32) -> Result<String> {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        if (x / 5 + y / 3) % 3 == 0 {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([245, 245, 245])
        }
    });
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png)))
}

fn chat_body(url: &str, prompt: &str, extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": prompt}]}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// POSTs `body`; the status and the body text, whatever the status.
fn post(url: &str, body: &str, key: Option<&str>) -> Result<(u16, String)> {
    let mut req = ureq::post(url).set("content-type", "application/json");
    if let Some(key) = key {
        req = req.set("authorization", &format!("Bearer {key}"));
    }
    respond(req.send_string(body))
}

fn get(url: &str, key: Option<&str>) -> Result<(u16, String)> {
    let mut req = ureq::get(url);
    if let Some(key) = key {
        req = req.set("authorization", &format!("Bearer {key}"));
    }
    respond(req.call())
}

fn respond(r: std::result::Result<ureq::Response, ureq::Error>) -> Result<(u16, String)> {
    match r {
        Ok(resp) => Ok((resp.status(), resp.into_string()?)),
        Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_string()?)),
        Err(e) => Err(e.into()),
    }
}

/// Sends a `length`-byte body; the status and body of the answer.
fn oversized_post(base: &str, length: usize) -> Result<(u16, String)> {
    use std::io::Write;
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )?;
    stream.write_all(&vec![b' '; length])?;
    let mut head = String::new();
    let mut reader = BufReader::new(stream);
    reader.read_line(&mut head)?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("a status line")?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse()?;
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8(body)?))
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_string).collect()
}

fn error_of(body: &str) -> Result<(String, String)> {
    let v: Value = serde_json::from_str(body).with_context(|| format!("not JSON: {body}"))?;
    let e = &v["error"];
    Ok((e["type"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string()))
}

/// Waits until the engine has no sequence and every KV block is back.
fn wait_idle(engine: &Engine) -> Result<()> {
    let started = Instant::now();
    loop {
        let s = engine.stats();
        if s.running == 0 && s.waiting == 0 && s.blocks_used == 0 {
            return Ok(());
        }
        ensure!(started.elapsed() < Duration::from_secs(30), "the engine did not come back to idle: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_streamed_answer_joins_into_the_whole_answer() -> Result<()> {
    let server = Server::start(config(), Some(ready(&fixture_dir())?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let image = png_data_url(64, 48)?;
    let body = chat_body(&image, "OCR:", json!({"max_tokens": 12, "temperature": 0}));
    let (status, whole) = post(&url, &body.to_string(), None)?;
    ensure!(status == 200, "{status}: {whole}");
    let whole: Value = serde_json::from_str(&whole)?;
    ensure!(whole["object"] == "chat.completion" && whole["model"] == "tiny");
    let text = whole["choices"][0]["message"]["content"].as_str().context("content")?.to_string();
    let usage = &whole["usage"];
    ensure!(usage["completion_tokens"] == 12 && whole["choices"][0]["finish_reason"] == "length", "{whole}");
    let prompt_tokens = usage["prompt_tokens"].as_u64().context("prompt_tokens")?;
    ensure!(prompt_tokens > 0 && usage["total_tokens"].as_u64() == Some(prompt_tokens + 12));

    let streamed =
        chat_body(&image, "OCR:", json!({"max_tokens": 12, "stream": true, "stream_options": {"include_usage": true}}));
    let (status, sse) = post(&url, &streamed.to_string(), None)?;
    ensure!(status == 200, "{status}: {sse}");
    let data = sse_data(&sse);
    ensure!(data.last().map(String::as_str) == Some("[DONE]"), "{sse}");
    let chunks: Vec<Value> =
        data[..data.len() - 1].iter().map(|d| serde_json::from_str(d)).collect::<Result<_, _>>()?;
    ensure!(chunks[0]["choices"][0]["delta"]["role"] == "assistant");
    let joined: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    ensure!(joined == text, "streamed {joined:?} vs whole {text:?}");
    let finish: Vec<&Value> =
        chunks.iter().map(|c| &c["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    ensure!(finish == [&json!("length")], "{finish:?}");
    let last = chunks.last().context("chunks")?;
    ensure!(last["choices"] == json!([]) && last["usage"] == *usage, "usage chunk {last} vs {usage}");
    wait_idle(server.engine()?.as_ref())?;
    server.stop()
}

#[test]
fn models_health_metrics_and_the_api_key() -> Result<()> {
    let cfg = ServerConfig { api_key: Some("sesame".into()), ..config() };
    let loading = Server::start(cfg.clone(), None)?;
    let (status, body) = get(&format!("{}/health", loading.url), None)?;
    ensure!(status == 503 && body.contains("loading"), "{status} {body}");
    let (status, body) = post(&format!("{}/v1/chat/completions", loading.url), "{}", Some("sesame"))?;
    ensure!(status == 503 && error_of(&body)?.1.contains("loading"), "{status} {body}");
    loading.stop()?;

    let server = Server::start(cfg, Some(ready(&fixture_dir())?))?;
    ensure!(get(&format!("{}/health", server.url), None)?.0 == 200);
    let models = format!("{}/v1/models", server.url);
    for key in [None, Some("wrong")] {
        let (status, body) = get(&models, key)?;
        ensure!(status == 401 && error_of(&body)?.0 == "authentication_error", "{key:?}: {status} {body}");
    }
    let (status, body) = get(&models, Some("sesame"))?;
    let list: Value = serde_json::from_str(&body)?;
    ensure!(status == 200 && list["data"][0]["id"] == "tiny", "{body}");
    let chat = format!("{}/v1/chat/completions", server.url);
    let body = chat_body(&png_data_url(32, 32)?, "OCR:", json!({"max_tokens": 2})).to_string();
    ensure!(post(&chat, &body, None)?.0 == 401);
    ensure!(post(&chat, &body, Some("sesame"))?.0 == 200);
    let (status, metrics) = get(&format!("{}/metrics", server.url), None)?;
    ensure!(status == 200, "{status}");
    for name in [
        "folio_http_requests_total",
        "folio_queue_depth",
        "folio_running_sequences",
        "folio_kv_blocks_used",
        "folio_kv_blocks_total",
        "folio_preemptions",
        "folio_generated_tokens",
        "folio_time_to_first_token_seconds_bucket",
        "folio_request_latency_seconds_bucket",
    ] {
        ensure!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    ensure!(metrics.contains(r#"status="401""#) && metrics.contains(r#"status="200""#));
    server.stop()
}

#[test]
fn every_bad_request_gets_its_status_and_the_server_lives_on() -> Result<()> {
    // A small body limit, so the over-limit body fits the socket buffers and the client reads the
    // 413 rather than a broken pipe.
    let server = Server::start(ServerConfig { max_body_bytes: 64 << 10, ..config() }, Some(ready(&fixture_dir())?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let image = png_data_url(32, 32)?;
    // A 30000 x 30000 PNG header: refused from its header, before any pixel is decoded.
    let huge = {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(30_000u32.to_be_bytes());
        ihdr.extend(30_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32fast::hash(&ihdr).to_be_bytes());
        for name in [b"IDAT", b"IEND"] {
            png.extend(0u32.to_be_bytes());
            png.extend(name);
            png.extend(crc32fast::hash(name).to_be_bytes());
        }
        format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png))
    };
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, "not a valid request"),
        (chat_body("data:image/png;base64,!!!!", "OCR:", json!({})).to_string(), 400, "base64"),
        (chat_body("data:image/png;base64,aGVsbG8=", "OCR:", json!({})).to_string(), 400, "image"),
        (chat_body(&image, "OCR:", json!({"max_tokens": -3})).to_string(), 400, "max_tokens"),
        (chat_body(&image, "OCR:", json!({"temperature": 1e9})).to_string(), 400, "temperature"),
        (chat_body(&image, "OCR:", json!({"n": 3})).to_string(), 400, "one choice"),
        (chat_body(&image, "OCR:", json!({"model": "gpt-4o"})).to_string(), 404, "does not exist"),
        (chat_body("file:///etc/passwd", "OCR:", json!({})).to_string(), 400, "never read"),
        (chat_body("http://127.0.0.1:9/x.png", "OCR:", json!({})).to_string(), 400, "remote image URLs are off"),
        (chat_body(&huge, "OCR:", json!({})).to_string(), 413, "30000 x 30000"),
    ];
    for (body, want, says) in cases {
        let (status, text) = post(&url, &body, None)?;
        let (_, message) = error_of(&text)?;
        ensure!(status == want && message.contains(says), "want {want} saying {says:?}, got {status}: {message}");
    }
    // A body one byte over the limit: the server reads it all before refusing it, so the client
    // meets the answer rather than a broken pipe (as it may when it is still writing).
    let (status, text) = oversized_post(&server.url, (64 << 10) + 1)?;
    ensure!(status == 413 && error_of(&text)?.1.contains("over"), "{status} {text}");
    let (status, text) = post(&format!("{}/v2/nothing", server.url), "{}", None)?;
    ensure!(status == 404 && error_of(&text).is_ok());
    // Still serving.
    let ok = chat_body(&image, "OCR:", json!({"max_tokens": 2})).to_string();
    ensure!(post(&url, &ok, None)?.0 == 200);
    server.stop()
}

#[test]
fn beyond_capacity_a_request_gets_429_and_a_client_that_leaves_frees_its_blocks() -> Result<()> {
    let server = Server::start(ServerConfig { max_admitted: 1, ..config() }, Some(ready(&fixture_dir())?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let image = png_data_url(64, 48)?;
    // min_tokens keeps the tiny model (which ends a reading in ~0.2 s) decoding for seconds.
    let long = chat_body(&image, "OCR:", json!({"max_tokens": 20000, "min_tokens": 20000, "stream": true})).to_string();
    let response = ureq::post(&url).set("content-type", "application/json").send_string(&long)?;
    let mut reader = BufReader::new(response.into_reader());
    // Past the role chunk to the first content: the request is decoding.
    let mut line = String::new();
    while !line.contains("\"content\":\"") || line.contains("\"role\"") {
        line.clear();
        ensure!(reader.read_line(&mut line)? > 0, "the stream ended early");
        ensure!(!line.contains("[DONE]"), "the long request finished at once");
    }
    // The one admitted request is streaming: the next is turned away at once.
    let short = chat_body(&image, "OCR:", json!({"max_tokens": 2})).to_string();
    let (status, body) = post(&url, &short, None)?;
    ensure!(status == 429 && error_of(&body)?.0 == "rate_limit_error", "{status} {body}");
    let engine = server.engine()?;
    // Stats are published at the end of each step, a moment after the step's tokens went out.
    let started = Instant::now();
    while engine.stats().blocks_used == 0 {
        ensure!(started.elapsed() < Duration::from_secs(5), "the long request holds no blocks: {:?}", engine.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    // The client goes away mid-stream: its request is aborted and its blocks come back.
    drop(reader);
    wait_idle(&engine)?;
    let generated = engine.stats().generated_tokens;
    ensure!(generated < 20_000, "the request ran to its end ({generated} tokens) instead of being aborted");
    let started = Instant::now();
    loop {
        let (status, _) = post(&url, &short, None)?;
        if status == 200 {
            break;
        }
        ensure!(status == 429 && started.elapsed() < Duration::from_secs(10), "{status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop()
}

#[test]
fn shutdown_lets_a_request_in_progress_finish() -> Result<()> {
    let server = Server::start(config(), Some(ready(&fixture_dir())?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let body =
        chat_body(&png_data_url(64, 48)?, "OCR:", json!({"max_tokens": 3000, "min_tokens": 3000, "stream": true}))
            .to_string();
    let response = ureq::post(&url).set("content-type", "application/json").send_string(&body)?;
    let mut reader = response.into_reader();
    let mut first = [0u8; 16];
    reader.read_exact(&mut first)?;
    let stopping = std::thread::spawn(move || server.stop());
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    ensure!(
        rest.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: …{}",
        &rest[rest.len().saturating_sub(200)..]
    );
    match stopping.join() {
        Ok(stopped) => stopped,
        Err(_) => bail!("the server thread panicked"),
    }
}

#[test]
fn a_line_model_reads_an_ocr_request_as_a_page_and_refuses_other_tasks() -> Result<()> {
    let dir = line_model_fixture("server")?;
    let server = Server::start(config(), Some(ready(&dir)?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let image = png_data_url(200, 60)?;
    for prompt in ["Table Recognition:", "Describe this picture"] {
        let (status, body) = post(&url, &chat_body(&image, prompt, json!({})).to_string(), None)?;
        ensure!(status == 400, "{prompt}: {status} {body}");
    }
    let (status, body) = post(&url, &chat_body(&image, "OCR:", json!({})).to_string(), None)?;
    ensure!(status == 200, "{status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    ensure!(v["choices"][0]["finish_reason"] == "stop");
    // The same page through the page reader directly (same weights, same options, greedy): the
    // same text and the same token counts, so the server read the image as a page of lines.
    let png = base64::engine::general_purpose::STANDARD.decode(image.trim_start_matches("data:image/png;base64,"))?;
    let page = image::load_from_memory(&png)?;
    let direct = ready(&dir)?;
    let mut read = read_pages(&direct.engine, whole_pages([page])?, &direct.read);
    let page = read.pop().context("a page")?;
    ensure!(v["choices"][0]["message"]["content"] == page.text(), "{v} vs {:?}", page.text());
    let usage = (v["usage"]["prompt_tokens"].as_u64(), v["usage"]["completion_tokens"].as_u64());
    ensure!(usage == (Some(page.usage.prompt_tokens as u64), Some(page.usage.completion_tokens as u64)), "{usage:?}");
    server.stop()?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// The server's answer is `folio ocr`'s for the same image, prompt and model (greedy).
#[test]
fn the_answer_equals_folio_ocr() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("folio-server-ocr-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = png_data_url(96, 64)?;
    let png = base64::engine::general_purpose::STANDARD.decode(url.trim_start_matches("data:image/png;base64,"))?;
    let path = dir.join("page.png");
    std::fs::write(&path, png)?;
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["ocr", "--max-tokens", "20", "--kv-cache-memory", "16MiB", "--model"])
        .arg(fixture_dir())
        .arg(&path)
        .output()?;
    ensure!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let cli = String::from_utf8(run.stdout)?;

    let server = Server::start(config(), Some(ready(&fixture_dir())?))?;
    let body = chat_body(&url, "OCR:", json!({"max_tokens": 20})).to_string();
    let (status, body) = post(&format!("{}/v1/chat/completions", server.url), &body, None)?;
    ensure!(status == 200, "{status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    let text = v["choices"][0]["message"]["content"].as_str().context("content")?;
    ensure!(cli == format!("{text}\n"), "folio ocr printed {cli:?}, the server answered {text:?}");
    server.stop()?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// A one-connection-at-a-time HTTP responder on loopback: `/ok.png` gives `png`, `/big.png` more
/// bytes than the cap, `/slow.png` nothing for longer than the timeout.
fn image_host(png: Vec<u8>) -> Result<String> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let png = png.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut request = [0u8; 1024];
                let n = stream.read(&mut request).unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..n]).into_owned();
                let body = if head.starts_with("GET /ok.png") {
                    png
                } else if head.starts_with("GET /big.png") {
                    vec![0u8; 300 << 10]
                } else {
                    std::thread::sleep(Duration::from_secs(3));
                    Vec::new()
                };
                let _ =
                    write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(&body);
            });
        }
    });
    Ok(url)
}

#[test]
fn remote_images_only_when_allowed_with_a_timeout_and_a_size_cap() -> Result<()> {
    let data_url = png_data_url(48, 32)?;
    let png =
        base64::engine::general_purpose::STANDARD.decode(data_url.trim_start_matches("data:image/png;base64,"))?;
    let host = image_host(png)?;
    let remote = folio::server::RemoteImages { timeout: Duration::from_millis(500), max_bytes: 200 << 10 };
    let cfg = ServerConfig { remote_images: Some(remote), ..config() };
    let server = Server::start(cfg, Some(ready(&fixture_dir())?))?;
    let url = format!("{}/v1/chat/completions", server.url);
    let ask = |image: String| post(&url, &chat_body(&image, "OCR:", json!({"max_tokens": 3})).to_string(), None);
    let (status, body) = ask(format!("{host}/ok.png"))?;
    ensure!(status == 200, "{status} {body}");
    let (status, body) = ask(format!("{host}/big.png"))?;
    ensure!(status == 413, "{status} {body}");
    let started = Instant::now();
    let (status, body) = ask(format!("{host}/slow.png"))?;
    ensure!(status == 400 && error_of(&body)?.1.contains("cannot fetch"), "{status} {body}");
    ensure!(started.elapsed() < Duration::from_secs(2), "the timeout was not kept: {:?}", started.elapsed());
    // Files stay out of reach even so.
    ensure!(ask("file:///etc/hostname".into())?.0 == 400);
    server.stop()
}

/// With no grace left, a request still streaming is aborted (its blocks return) and the server
/// returns at once.
#[test]
fn after_the_grace_period_what_is_left_is_aborted() -> Result<()> {
    let cfg = ServerConfig { shutdown_grace: Duration::from_millis(200), ..config() };
    let server = Server::start(cfg, Some(ready(&fixture_dir())?))?;
    let engine = server.engine()?;
    let url = format!("{}/v1/chat/completions", server.url);
    let body =
        chat_body(&png_data_url(64, 48)?, "OCR:", json!({"max_tokens": 30000, "min_tokens": 30000, "stream": true}))
            .to_string();
    let response = ureq::post(&url).set("content-type", "application/json").send_string(&body)?;
    let mut reader = response.into_reader();
    let mut first = [0u8; 16];
    reader.read_exact(&mut first)?;
    let started = Instant::now();
    server.stop()?;
    ensure!(started.elapsed() < Duration::from_secs(8), "the server waited {:?}", started.elapsed());
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest); // cut off: the connection closes without [DONE]
    ensure!(!String::from_utf8_lossy(&rest).contains("[DONE]"), "the request ran to its end");
    wait_idle(&engine)?;
    ensure!(engine.stats().generated_tokens < 30_000);
    Ok(())
}

/// `folio ocr` follows the model's rule: a line model refuses a task it cannot do, saying so.
#[test]
fn folio_ocr_refuses_a_task_the_model_cannot_do() -> Result<()> {
    let dir = line_model_fixture("ocr-rule")?;
    let image = std::env::temp_dir().join(format!("folio-ocr-rule-{}.png", std::process::id()));
    image::RgbImage::from_pixel(64, 32, image::Rgb([255, 255, 255])).save(&image)?;
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .args(["ocr", "--task", "table", "--model"])
        .arg(&dir)
        .arg(&image)
        .output()?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    ensure!(!run.status.success() && stderr.contains("cannot do Table Recognition"), "{stderr}");
    std::fs::remove_dir_all(dir)?;
    std::fs::remove_file(image)?;
    Ok(())
}
