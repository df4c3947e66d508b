//! `iotdisco announce`: tell things where the XMPP server and its registry
//! are (spec 3.3), in one of three ways.
//!
//! - `--mdns`: publishes the `_xmpp-client._tcp.local.` records (Listings
//!   4-8) with the `mdns-sd` responder until SIGINT/SIGTERM, then sends
//!   goodbyes. Before publishing it browses for `--probe-seconds` and takes
//!   the first machine name nobody uses (`pronto`, `pronto-1`, ...: spec
//!   3.3.2); if the responder still meets a conflict later (it then renames
//!   in its own style, `pronto-2.local.` / `pronto (2)`), the announcement is
//!   withdrawn and published again under the spec's next name.
//! - `--zone`: prints the same records as a zone-file fragment for a unicast
//!   DNS server (RFC 6763 DNS-SD over ordinary DNS), under `--domain`.
//! - `--dhcp`: prints the option 224/84 configuration (3.3.1) for dnsmasq,
//!   ISC dhcpd and Kea, naming `<server-name>.<domain>`.
//!
//! The records themselves come from `iotdisco::discovery` (pure, tested
//! against the spec's listings); this module only does the I/O.

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::ArgGroup;
use iotdisco::discovery::{Announcement, MachineName, SERVICE, XmppTxt, dhcp};
use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceEvent, ServiceInfo, TxtProperty};

use crate::{Error, Result};

/// Announce the XMPP server and its Thing Registry to things: over mDNS, as
/// a DNS zone fragment, or as DHCP server configuration.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("mode").required(true).args(["mdns", "zone", "dhcp"])))]
#[command(after_help = "Examples:\n  \
    iotdisco announce --mdns --server-name pronto --port 5222 --ordom example.com --regis registry\n  \
    iotdisco announce --zone --server-name pronto --domain example.com --address 10.2.1.188 \
    --ordom example.com --regis registry --provis provisioning\n  \
    iotdisco announce --dhcp --server-name pronto")]
pub struct Args {
    /// Publish over multicast DNS until stopped (SIGINT/SIGTERM).
    #[arg(long)]
    mdns: bool,
    /// Print the records as a zone-file fragment for a unicast DNS server.
    #[arg(long)]
    zone: bool,
    /// Print DHCP option 224/84 configuration for dnsmasq, ISC dhcpd and Kea.
    #[arg(long)]
    dhcp: bool,
    /// The machine name of the XMPP server (`pronto` -> pronto.local.).
    #[arg(long, value_name = "NAME")]
    server_name: String,
    /// The XMPP client port.
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// The XMPP domain of the service (TXT `ordom`).
    #[arg(long, value_name = "DOMAIN")]
    ordom: Option<String>,
    /// A Thing Registry: user name (completed with --ordom), JID or
    /// component address (TXT `regis`; repeatable).
    #[arg(long, value_name = "NAME")]
    regis: Vec<String>,
    /// A provisioning server, in the same forms (TXT `provis`; repeatable).
    #[arg(long, value_name = "NAME")]
    provis: Vec<String>,
    /// The DNS domain of the records: `local` for mDNS (the only one it
    /// accepts), your site's domain for --zone and --dhcp.
    #[arg(long, default_value = "local")]
    domain: String,
    /// An address of the server (A/AAAA; repeatable). --mdns without it
    /// publishes the addresses of the interfaces it runs on.
    #[arg(long = "address", value_name = "IP")]
    addresses: Vec<IpAddr>,
    /// Record TTL, seconds.
    #[arg(long, default_value_t = iotdisco::discovery::DEFAULT_TTL)]
    ttl: u32,
    /// --mdns: publish on this network interface only (repeatable; default
    /// all).
    #[arg(long = "interface", value_name = "NAME")]
    interfaces: Vec<String>,
    /// --mdns: how long to look for servers already using the name first.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    probe_seconds: f64,
    /// --dhcp: the option code(s) to configure, 224 (site-specific) and/or
    /// 84 (default: both).
    #[arg(long = "dhcp-code", value_name = "CODE", value_parser = ["224", "84"])]
    dhcp_codes: Vec<String>,
}

/// Runs `iotdisco announce`.
pub fn run(args: Args) -> Result<()> {
    let machine = MachineName::new(&args.server_name).map_err(|e| Error::new(e.to_string()))?;
    let regis: Vec<&str> = args.regis.iter().map(String::as_str).collect();
    let provis: Vec<&str> = args.provis.iter().map(String::as_str).collect();
    // Nothing to publish: the lone zero byte of DNS-SD (spec 3.3.2 note).
    let txt = if args.ordom.is_none() && regis.is_empty() && provis.is_empty() {
        XmppTxt::nothing()
    } else {
        XmppTxt::new(args.ordom.as_deref(), &regis, &provis)
            .map_err(|e| Error::new(e.to_string()))?
    };
    let announcement = Announcement::new(machine, &args.domain, args.port, txt)
        .map_err(|e| Error::new(e.to_string()))?
        .with_addresses(args.addresses.clone())
        .with_ttl(args.ttl);
    if args.zone {
        zone(&announcement)
    } else if args.dhcp {
        dhcp_config(&announcement, &args.dhcp_codes)
    } else {
        mdns(announcement, &args)
    }
}

fn zone(a: &Announcement) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "; XEP-0347 3.3.2: the XMPP server {} for things, as DNS-SD records (RFC 6763).",
        a.machine()
    )?;
    writeln!(
        out,
        "; Written by `iotdisco announce --zone`; add to the zone of {}",
        a.host().parent()
    )?;
    if a.addresses().is_empty() {
        writeln!(
            out,
            "; No --address given: {} needs its A/AAAA records elsewhere in the zone.",
            a.host()
        )?;
    }
    out.write_all(a.zone().map_err(|e| Error::new(e.to_string()))?.as_bytes())?;
    Ok(())
}

fn dhcp_config(a: &Announcement, codes: &[String]) -> Result<()> {
    let mut codes: Vec<u8> = codes.iter().filter_map(|c| c.parse().ok()).collect();
    if codes.is_empty() {
        codes = vec![dhcp::SITE_SPECIFIC, dhcp::PROPOSED];
    }
    codes.dedup();
    let host = a.host().to_string();
    let server = host.trim_end_matches('.');
    let e = |e: iotdisco::discovery::DiscoveryError| Error::new(e.to_string());
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# XEP-0347 3.3.1: DHCP option {} naming the XMPP server {server}.\n",
        codes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    )?;
    writeln!(out, "{}", dhcp::dnsmasq(&codes, server).map_err(e)?)?;
    writeln!(out, "{}", dhcp::isc_dhcpd(&codes, server).map_err(e)?)?;
    write!(out, "{}", dhcp::kea(&codes, server).map_err(e)?)?;
    Ok(())
}

/// The mDNS service type with its domain.
fn service_type() -> String {
    format!("{SERVICE}.local.")
}

/// A daemon restricted to `interfaces` when some are named.
pub fn daemon(interfaces: &[String]) -> Result<ServiceDaemon> {
    let d = ServiceDaemon::new().map_err(|e| Error::new(format!("cannot start mDNS: {e}")))?;
    if !interfaces.is_empty() {
        d.disable_interface(IfKind::All)
            .map_err(|e| Error::new(format!("mDNS: {e}")))?;
        for name in interfaces {
            d.enable_interface(IfKind::Name(name.clone()))
                .map_err(|e| Error::new(format!("mDNS: {e}")))?;
        }
    }
    Ok(d)
}

/// Machine names seen on the network for `_xmpp-client._tcp` (instances and
/// hosts, lower-cased) while browsing for `seconds`.
fn names_in_use(d: &ServiceDaemon, seconds: f64) -> Result<HashSet<String>> {
    let events = d
        .browse(&service_type())
        .map_err(|e| Error::new(format!("mDNS browse: {e}")))?;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut taken = HashSet::new();
    let suffix = format!(".{}", service_type());
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ServiceEvent::ServiceFound(_, fullname)) => {
                if let Some(name) = fullname.strip_suffix(&suffix) {
                    taken.insert(name.to_ascii_lowercase());
                }
            }
            Ok(ServiceEvent::ServiceResolved(s)) => {
                if let Some(name) = s.fullname.strip_suffix(&suffix) {
                    taken.insert(name.to_ascii_lowercase());
                }
                if let Some(host) = s.host.strip_suffix(".local.") {
                    taken.insert(host.to_ascii_lowercase());
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = d.stop_browse(&service_type());
    Ok(taken)
}

/// The mdns-sd service for an announcement.
fn service_info(a: &Announcement) -> Result<ServiceInfo> {
    let strings = a.txt().strings().map_err(|e| Error::new(e.to_string()))?;
    let props: Vec<TxtProperty> = strings
        .iter()
        .map(|s| match s.iter().position(|&b| b == b'=') {
            Some(i) => TxtProperty::from((String::from_utf8_lossy(&s[..i]), &s[i + 1..])),
            None => TxtProperty::from(String::from_utf8_lossy(s).as_ref()),
        })
        .collect();
    let host = a.host().to_string();
    let addresses: Vec<IpAddr> = a.addresses().to_vec();
    let info = ServiceInfo::new(
        &service_type(),
        a.machine().as_str(),
        &host,
        &addresses[..],
        a.port(),
        props,
    )
    .map_err(|e| Error::new(format!("mDNS service: {e}")))?;
    Ok(if addresses.is_empty() {
        info.enable_addr_auto()
    } else {
        info
    })
}

/// Waits for SIGINT or SIGTERM on a thread of its own; the receiver gets
/// one message when either arrives.
fn stop_signal() -> Result<mpsc::Receiver<&'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::new(format!("cannot wait for signals: {e}")))?;
    // Installed here, before anything is published: a signal from now on
    // ends the announcement cleanly.
    let (mut int, mut term) = {
        let _entered = rt.enter();
        let install =
            |kind| signal(kind).map_err(|e| Error::new(format!("cannot wait for signals: {e}")));
        (
            install(SignalKind::interrupt())?,
            install(SignalKind::terminate())?,
        )
    };
    std::thread::spawn(move || {
        rt.block_on(async move {
            let which = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = tx.send(which);
        });
    });
    Ok(rx)
}

fn mdns(announcement: Announcement, args: &Args) -> Result<()> {
    if !announcement
        .host()
        .parent()
        .to_string()
        .eq_ignore_ascii_case("local.")
    {
        return Err(Error::new(
            "--mdns publishes under local. only (use --zone for other domains)",
        ));
    }
    if !(0.0..=3600.0).contains(&args.probe_seconds) {
        return Err(Error::new("--probe-seconds must be between 0 and 3600"));
    }
    let stop = stop_signal()?;
    let d = daemon(&args.interfaces)?;
    let monitor = d
        .monitor()
        .map_err(|e| Error::new(format!("mDNS monitor: {e}")))?;
    let mut taken = names_in_use(&d, args.probe_seconds)?;
    let base = announcement.machine().clone();
    let pick = |taken: &HashSet<String>| {
        base.first_free(|c| taken.contains(&c.as_str().to_ascii_lowercase()))
            .ok_or_else(|| Error::new("every machine name is taken"))
    };
    let mut current = announcement
        .renamed(pick(&taken)?)
        .map_err(|e| Error::new(e.to_string()))?;
    if current.machine() != &base {
        println!(
            "{} is taken on the network: using {} (XEP-0347 3.3.2)",
            base,
            current.machine()
        );
    }
    let mut info = service_info(&current)?;
    d.register(info.clone())
        .map_err(|e| Error::new(format!("mDNS register: {e}")))?;
    print_published(&current);
    let reason = loop {
        if let Ok(which) = stop.try_recv() {
            break which;
        }
        match monitor.recv_timeout(Duration::from_millis(200)) {
            Ok(DaemonEvent::NameChange(change)) if is_ours(&current, &change.original) => {
                // The responder met a conflict and renamed in its own style:
                // withdraw and publish under the spec's next name instead.
                // (One conflict can report several records and interfaces:
                // after the first, the others name the old registration and
                // are not ours any more.)
                taken.insert(current.machine().as_str().to_ascii_lowercase());
                let _ = d.unregister(info.get_fullname());
                current = current
                    .renamed(pick(&taken)?)
                    .map_err(|e| Error::new(e.to_string()))?;
                println!(
                    "conflict on {} ({:?} -> {:?}): renamed to {} (XEP-0347 3.3.2)",
                    change.intf_name,
                    change.original,
                    change.new_name,
                    current.machine()
                );
                info = service_info(&current)?;
                d.register(info.clone())
                    .map_err(|e| Error::new(format!("mDNS register: {e}")))?;
                print_published(&current);
            }
            Ok(DaemonEvent::Error(e)) => eprintln!("mDNS: {e}"),
            Ok(_) | Err(mdns_sd::RecvTimeoutError::Timeout) => {}
            Err(mdns_sd::RecvTimeoutError::Disconnected) => {
                return Err(Error::new("the mDNS responder stopped"));
            }
        }
    };
    // Goodbye packets (TTL 0), then stop the responder.
    if let Ok(status) = d.unregister(info.get_fullname()) {
        let _ = status.recv_timeout(Duration::from_secs(2));
    }
    if let Ok(status) = d.shutdown() {
        let _ = status.recv_timeout(Duration::from_secs(2));
    }
    println!("{reason}: withdrew {}", current.instance());
    Ok(())
}

/// Whether a name the responder changed belongs to the current
/// registration (its instance or host name).
fn is_ours(current: &Announcement, original: &str) -> bool {
    let original = original.trim_end_matches('.');
    [current.instance(), current.host()].iter().any(|n| {
        n.to_string()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(original)
    })
}

fn print_published(a: &Announcement) {
    let txt = a.txt().to_string();
    println!(
        "published {} (host {}, port {}, TXT {txt}); stop with Ctrl-C",
        a.instance(),
        a.host(),
        a.port()
    );
    let _ = std::io::stdout().flush();
}
