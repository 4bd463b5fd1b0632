//! A request's image: a `data:image/…;base64,…` URL, or (only when the server was started with
//! remote images allowed) an `http(s)` URL fetched with a timeout and a size cap. `file:` URLs and
//! paths are never read. The size is read from the image's header and checked against the page
//! budget before anything is decoded.

use std::io::{Cursor, Read};
use std::time::Duration;

use base64::Engine as _;
use image::{DynamicImage, ImageReader};

use super::error::ApiError;
use crate::pipeline::source::{check_budget, decode_with_limits};

/// Remote image fetching, when allowed.
#[derive(Clone, Debug)]
pub struct RemoteImages {
    pub timeout: Duration,
    pub max_bytes: usize,
}

/// The bytes behind `url`.
pub fn fetch(url: &str, remote: Option<&RemoteImages>) -> Result<Vec<u8>, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| ApiError::bad("a data URL without a comma"))?;
        if !meta.ends_with(";base64") {
            return Err(ApiError::bad("a data URL must be base64 (data:image/png;base64,…)"));
        }
        let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| ApiError::bad(format!("the image's base64 does not decode: {e}")));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let Some(remote) = remote else {
            return Err(ApiError::bad(
                "remote image URLs are off on this server (start it with --allow-remote-images): send the image as a data URL",
            ));
        };
        return fetch_remote(url, remote);
    }
    Err(ApiError::bad("image_url must be a data: URL (or http(s) when the server allows it); files are never read"))
}

fn fetch_remote(url: &str, remote: &RemoteImages) -> Result<Vec<u8>, ApiError> {
    let agent = ureq::AgentBuilder::new().timeout(remote.timeout).redirects(3).build();
    let response = agent.get(url).call().map_err(|e| ApiError::bad(format!("cannot fetch the image: {e}")))?;
    let mut bytes = Vec::new();
    let limit = remote.max_bytes as u64 + 1;
    response
        .into_reader()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::bad(format!("cannot fetch the image: {e}")))?;
    if bytes.len() as u64 >= limit {
        return Err(ApiError::TooLarge(format!("the remote image is over {} bytes", remote.max_bytes)));
    }
    Ok(bytes)
}

/// Decodes `bytes`: the size from the header first (413 over the page budget), then the pixels.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ApiError> {
    // Reading from memory cannot fail; only the format guess can.
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ApiError::bad(format!("not an image: {e}")))
    };
    let (w, h) = reader()?.into_dimensions().map_err(|e| ApiError::bad(format!("the image does not decode: {e}")))?;
    check_budget(w, h).map_err(|e| ApiError::TooLarge(format!("{e:#}")))?;
    let reader = reader()?;
    decode_with_limits(reader).map_err(|e| ApiError::bad(format!("the image does not decode: {e:#}")))
}

/// `image` scaled, keeping its aspect, so its pixel count lies within `min`..=`max` (the
/// `mm_processor_kwargs` bounds vLLM's clients send).
pub fn fit_pixels(image: DynamicImage, min: Option<u64>, max: Option<u64>) -> DynamicImage {
    let pixels = image.width() as u64 * image.height() as u64;
    let target = match (min, max) {
        (_, Some(max)) if pixels > max => max,
        (Some(min), _) if pixels < min => min,
        _ => return image,
    };
    let scale = (target as f64 / pixels.max(1) as f64).sqrt();
    let w = ((image.width() as f64 * scale).floor() as u32).max(1);
    let h = ((image.height() as f64 * scale).floor() as u32).max(1);
    image.resize_exact(w, h, image::imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode_and_other_urls_are_refused() {
        let png = {
            let mut out = Vec::new();
            let image = image::RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
            image.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).map(|_| out).unwrap_or_default()
        };
        let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
        let decoded = fetch(&url, None).and_then(|b| decode(&b));
        assert!(decoded.is_ok_and(|i| (i.width(), i.height()) == (3, 2)));
        for bad in
            ["data:image/png;base64,@@@", "data:image/png,abc", "file:///etc/passwd", "/etc/passwd", "http://x/y.png"]
        {
            assert!(matches!(fetch(bad, None), Err(ApiError::BadRequest { .. })), "{bad}");
        }
        assert!(matches!(decode(b"not an image"), Err(ApiError::BadRequest { .. })));
    }

    #[test]
    fn images_are_scaled_into_the_pixel_bounds() {
        let image = DynamicImage::new_rgb8(400, 100);
        let small = fit_pixels(image.clone(), None, Some(10_000));
        assert!(small.width() * small.height() <= 10_000 && small.width() == 4 * small.height());
        let big = fit_pixels(image.clone(), Some(160_000), None);
        assert!(big.width() * big.height() >= 150_000);
        assert_eq!(fit_pixels(image, Some(1), Some(1_000_000)).width(), 400);
    }
}
