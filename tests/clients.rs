//! `folio serve` as a process, reached by real clients: the OpenAI Python SDK
//! (tests/clients/openai_sdk.py, in the venv scripts/setup.sh makes) and curl reading the SSE
//! stream; then SIGTERM, after which the server exits 0. The tiny fixture model answers.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine as _;
use common::fixture_dir;

/// A `folio serve` child process, killed if the test fails before it stops it.
struct Serve {
    child: Option<Child>,
    url: String,
}

impl Serve {
    fn start(key: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(env!("CARGO_BIN_EXE_folio"))
            .args(["serve", "--port", &port.to_string(), "--served-model-name", "tiny", "--layout", "none"])
            .args(["--kv-cache-memory", "16MiB", "--shutdown-grace", "5", "--model"])
            .arg(fixture_dir())
            .env("FOLIO_API_KEY", key)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let serve = Serve { child: Some(child), url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        loop {
            if ureq::get(&format!("{}/health", serve.url)).call().is_ok() {
                return Ok(serve);
            }
            ensure!(started.elapsed() < Duration::from_secs(60), "folio serve did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; the exit status and what the server printed.
    fn terminate(mut self) -> Result<(std::process::ExitStatus, String)> {
        let child = self.child.take().context("already stopped")?;
        let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        ensure!(killed.success(), "kill -TERM failed");
        let out = child.wait_with_output()?;
        Ok((out.status, String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client_python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FOLIO_CLIENT_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-clients/bin/python");
    ensure!(venv.exists(), "{} is missing: run scripts/setup.sh (it installs the OpenAI SDK there)", venv.display());
    Ok(venv)
}

fn test_image(dir: &std::path::Path) -> Result<PathBuf> {
    let image = image::RgbImage::from_fn(96, 64, |x, y| {
        if (x / 5 + y / 3) % 3 == 0 {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([245, 245, 245])
        }
    });
    let path = dir.join("page.png");
    image.save(&path)?;
    Ok(path)
}

#[test]
fn the_openai_sdk_and_curl_talk_to_folio_serve() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("folio-clients-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let image = test_image(&dir)?;
    let python = client_python()?;
    let serve = Serve::start("sesame")?;

    let sdk = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openai_sdk.py"))
        .args([&serve.url, "sesame"])
        .arg(&image)
        .output()?;
    let said = String::from_utf8_lossy(&sdk.stdout);
    ensure!(sdk.status.success(), "the SDK client failed:\n{said}\n{}", String::from_utf8_lossy(&sdk.stderr));
    eprintln!("{said}");

    // curl with SSE: chunks as they come, the finish reason, then [DONE].
    let png = std::fs::read(&image)?;
    let body = serde_json::json!({"model": "tiny", "stream": true, "max_tokens": 8, "messages": [{"role": "user",
        "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png))}}, {"type": "text", "text": "OCR:"}]}]});
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, body.to_string())?;
    let curl = Command::new("curl")
        .args([
            "-sSN",
            "--fail-with-body",
            "-H",
            "Authorization: Bearer sesame",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .arg(format!("{}/v1/chat/completions", serve.url))
        .output()
        .context("curl (installed by scripts/setup.sh)")?;
    let sse = String::from_utf8(curl.stdout)?;
    ensure!(curl.status.success(), "curl: {sse} {}", String::from_utf8_lossy(&curl.stderr));
    let data: Vec<&str> = sse.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    ensure!(data.len() >= 3 && data.last() == Some(&"[DONE]"), "{sse}");
    ensure!(sse.contains("\"finish_reason\":\"length\""), "{sse}");

    let (status, stderr) = serve.terminate()?;
    if !status.success() {
        bail!("folio serve exited with {status} after SIGTERM:\n{stderr}");
    }
    ensure!(stderr.contains("stopped"), "{stderr}");
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
