//! `iotdisco qr`: the claim data printed on a thing, as text and as a QR code.
//!
//! `encode` builds the spec's claim string (3.9, `IoTDisco;SN:...;#V:1.2`) or,
//! with `--uri`, the successor's claim URI (`iotdisco:SN=...;#V=1.2;R=registry`)
//! with the library's codecs (`iotdisco::uri`), prints it on the first line of
//! stdout, and renders its QR code locally (spec 6.7 warns against external QR
//! services): in the terminal as Unicode half blocks (two module rows per text
//! line, light on dark inverted so it scans on dark and light terminals), or as
//! an SVG file with `--svg`. Tags keep their command-line order, `--tag` and
//! `--num` interleaved. `decode` reads either form and prints the tags.

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgMatches, FromArgMatches, Subcommand};
use iotdisco::tag::Number;
use iotdisco::{Tag, TagName, TagValue};
use qrcode::QrCode;
use qrcode::render::{svg, unicode};
use serde_json::json;

use crate::{Error, Result};

/// Claim strings and URIs and their QR codes (encode or decode).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    iotdisco qr encode --tag SN=394872348732948723 --num V=1.2 --tag KEY=4857402340298342\n  \
    iotdisco qr decode 'IoTDisco;SN:394872348732948723;#V:1.2'")]
pub struct Args {
    #[command(subcommand)]
    command: QrCommand,
}

#[derive(Subcommand)]
enum QrCommand {
    /// Build a claim string (or URI) from tags, print it and its QR code.
    Encode(EncodeArgs),
    /// Print the tags of a claim string or claim URI.
    Decode(DecodeArgs),
}

/// What `qr encode` takes, as clap sees it (see [`EncodeArgs`] for the order
/// of the tags).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    iotdisco qr encode --tag MAN=www.ktc.se --tag MODEL=IMC --tag SN=394872348732948723 \
    --num V=1.2 --tag KEY=4857402340298342\n  \
    iotdisco qr encode --uri --registry discovery.example.org --tag SN=123 --svg claim.svg")]
struct EncodeRaw {
    /// A string tag NAME=VALUE (repeatable; everything after the first '=' is
    /// the value).
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = parse_str_tag)]
    tags: Vec<Tag>,
    /// A numeric tag NAME=NUMBER (repeatable), written with '#'.
    #[arg(long = "num", value_name = "NAME=NUMBER", value_parser = parse_num_tag)]
    nums: Vec<Tag>,
    /// Write the successor's iotdisco: claim URI instead of the IoTDisco; string.
    #[arg(long)]
    uri: bool,
    /// The registry's JID, as the URI's R tag.
    #[arg(long, value_name = "JID", requires = "uri")]
    registry: Option<String>,
    /// Write the QR code to this SVG file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// `qr encode`'s arguments with the tags in command-line order.
struct EncodeArgs {
    raw: EncodeRaw,
    tags: Vec<Tag>,
}

impl FromArgMatches for EncodeArgs {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let raw = EncodeRaw::from_arg_matches(m)?;
        let at = |id: &str| {
            m.indices_of(id)
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let mut placed: Vec<(usize, Tag)> = at("tags")
            .into_iter()
            .zip(raw.tags.iter().cloned())
            .chain(at("nums").into_iter().zip(raw.nums.iter().cloned()))
            .collect();
        placed.sort_by_key(|(i, _)| *i);
        let tags = placed.into_iter().map(|(_, t)| t).collect();
        Ok(EncodeArgs { raw, tags })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for EncodeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        EncodeRaw::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        EncodeRaw::augment_args_for_update(cmd)
    }
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    iotdisco qr decode 'IoTDisco;MAN:www.ktc.se;MODEL:IMC;SN:394872348732948723;#V:1.2;KEY:4857402340298342'\n  \
    iotdisco qr decode 'iotdisco:SN=123;#V=1.2;R=discovery.example.org' --json")]
struct DecodeArgs {
    /// The claim string (IoTDisco;...) or claim URI (iotdisco:...); quote it.
    #[arg(value_name = "STRING")]
    text: String,
    /// Print JSON instead of one tag per line.
    #[arg(long)]
    json: bool,
}

fn split_tag(s: &str) -> std::result::Result<(&str, &str), String> {
    s.split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

fn parse_str_tag(s: &str) -> std::result::Result<Tag, String> {
    let (name, value) = split_tag(s)?;
    Tag::str(name, value).map_err(|e| e.to_string())
}

fn parse_num_tag(s: &str) -> std::result::Result<Tag, String> {
    let (name, value) = split_tag(s)?;
    let name = TagName::new(name).map_err(|e| e.to_string())?;
    let n = Number::parse(value, name.as_str()).map_err(|e| e.to_string())?;
    Ok(Tag {
        name,
        value: TagValue::Num(n),
    })
}

fn encode(args: EncodeArgs) -> Result<()> {
    if args.tags.is_empty() {
        return Err(Error::new(
            "give at least one tag (--tag NAME=VALUE or --num NAME=NUMBER)",
        ));
    }
    let text = if args.raw.uri {
        iotdisco::uri::encode_claim_uri(&args.tags, args.raw.registry.as_deref())
    } else {
        iotdisco::uri::encode_claim(&args.tags)
    };
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| format!("cannot make a QR code of {} bytes: {e}", text.len()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    match &args.raw.svg {
        Some(path) => {
            let image = code
                .render::<svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            std::fs::write(path, image)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            // Dark modules as the terminal's background, light ones as blocks,
            // with the quiet zone: scans on dark terminals, and on light ones
            // the inverted code still decodes with most readers.
            let image = code
                .render::<unicode::Dense1x2>()
                .dark_color(unicode::Dense1x2::Light)
                .light_color(unicode::Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            writeln!(out, "{image}")?;
        }
    }
    Ok(())
}

fn decode(args: DecodeArgs) -> Result<()> {
    let claim = iotdisco::uri::decode_any_claim(&args.text)
        .map_err(|e| format!("cannot decode the claim: {e}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = json!({
            "tags": claim.tags.iter().map(|t| match &t.value {
                TagValue::Str(s) => json!({"name": t.name.as_str(), "str": s.as_str()}),
                TagValue::Num(n) => json!({"name": t.name.as_str(), "num": n.get()}),
            }).collect::<Vec<_>>(),
            "registry": claim.registry,
        });
        writeln!(out, "{v:#}")?;
        return Ok(());
    }
    for t in &claim.tags {
        match &t.value {
            TagValue::Str(s) => writeln!(out, "{}\t{s}", t.name)?,
            TagValue::Num(n) => writeln!(out, "#{}\t{n}", t.name)?,
        }
    }
    if let Some(r) = &claim.registry {
        writeln!(out, "registry\t{r}")?;
    }
    Ok(())
}

/// Runs `iotdisco qr`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        QrCommand::Encode(a) => encode(a),
        QrCommand::Decode(a) => decode(a),
    }
}
