//! `iotdisco discover`: browse `_xmpp-client._tcp` the way a thing does
//! (spec 3.3.2) and print each XMPP server with its host, port, addresses,
//! `ordom`, registries and provisioning servers.
//!
//! `--mdns` browses with the `mdns-sd` querier for `--timeout` seconds.
//! `--dns SERVER:PORT` browses unicast DNS-SD (RFC 6763) under `--domain`
//! with a small blocking client built on `iotdisco::discovery`: its
//! [`Browse`] says which PTR, SRV, TXT, A and AAAA questions to ask,
//! `discovery::message` writes the queries and reads the answers, and this
//! module only moves datagrams (UDP, and TCP when an answer comes back
//! truncated). Why not hickory-resolver, the field's standard resolver: a
//! browse is at most 1 + 4 questions per server to one named server, the
//! record code (with its malformed-input tests) is already in the library
//! for the zone and mDNS sides, and hickory would bring an async resolver
//! stack (and its own record types to convert) into the command for those
//! few datagrams. The client is strict: answers must come from the server
//! asked, carry our id and question, and parse completely.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use clap::ArgGroup;
use iotdisco::discovery::message::{self, Response};
use iotdisco::discovery::record::type_name;
use iotdisco::discovery::{Browse, DiscoveredServer, Name, SERVICE, XmppTxt, service_name};
use mdns_sd::ServiceEvent;
use serde_json::{Value, json};

use crate::{Error, Result};

/// Find XMPP servers and their Thing Registries: mDNS or unicast DNS-SD.
#[derive(clap::Args)]
#[command(group(ArgGroup::new("how").args(["mdns", "dns"])))]
#[command(after_help = "Examples:\n  \
    iotdisco discover --mdns --timeout 3\n  \
    iotdisco discover --dns 192.168.1.1:53 --domain example.com --json")]
pub struct Args {
    /// Browse with multicast DNS on the local link (the default).
    #[arg(long)]
    mdns: bool,
    /// Browse with unicast DNS queries to this server (HOST:PORT).
    #[arg(long, value_name = "SERVER:PORT")]
    dns: Option<String>,
    /// The DNS domain browsed with --dns.
    #[arg(long, default_value = "local")]
    domain: String,
    /// How long to browse, seconds (--dns: the limit for the whole browse).
    #[arg(long, default_value_t = 3.0, value_name = "S")]
    timeout: f64,
    /// --mdns: browse on this network interface only (repeatable).
    #[arg(long = "interface", value_name = "NAME")]
    interfaces: Vec<String>,
    /// One JSON array of servers instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `iotdisco discover`.
pub fn run(args: Args) -> Result<()> {
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(Error::new(
            "--timeout must be a positive number of seconds, at most 3600",
        ));
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let (servers, source) = match &args.dns {
        Some(server) => (
            unicast(server, &args.domain, timeout)?,
            format!(
                "{SERVICE}.{} via {server}",
                args.domain.trim_end_matches('.')
            ),
        ),
        None => (
            mdns(&args.interfaces, timeout)?,
            format!("{SERVICE}.local. via mDNS"),
        ),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<Value> = servers.iter().map(to_json).collect();
        writeln!(out, "{}", Value::Array(list))?;
        return Ok(());
    }
    if servers.is_empty() {
        eprintln!("no XMPP server found ({source}, {} s)", args.timeout);
        return Ok(());
    }
    for s in &servers {
        writeln!(out, "{}", text(s))?;
    }
    Ok(())
}

/// The text block of one server.
fn text(s: &DiscoveredServer) -> String {
    let mut t = format!("{}\n  host: {} port {}\n", s.instance, s.host, s.port);
    let addrs: Vec<String> = s.addresses.iter().map(IpAddr::to_string).collect();
    t.push_str(&format!("  addresses: {}\n", none_if_empty(&addrs)));
    match &s.txt {
        Ok(txt) => {
            t.push_str(&format!(
                "  ordom: {}\n",
                txt.ordom.as_deref().unwrap_or("(none)")
            ));
            t.push_str(&format!(
                "  registries: {}\n",
                none_if_empty(&txt.registry_jids())
            ));
            t.push_str(&format!(
                "  provisioning: {}\n",
                none_if_empty(&txt.provisioning_jids())
            ));
        }
        Err(e) => t.push_str(&format!("  TXT unusable: {e}\n")),
    }
    t
}

fn none_if_empty(list: &[String]) -> String {
    if list.is_empty() {
        "(none)".into()
    } else {
        list.join(" ")
    }
}

fn to_json(s: &DiscoveredServer) -> Value {
    let (txt, error) = match &s.txt {
        Ok(t) => (Some(t), None),
        Err(e) => (None, Some(e.to_string())),
    };
    json!({
        "instance": s.instance.to_string(),
        "name": s.name(),
        "host": s.host.to_string(),
        "port": s.port,
        "priority": s.priority,
        "addresses": s.addresses.iter().map(IpAddr::to_string).collect::<Vec<_>>(),
        "ordom": txt.and_then(|t| t.ordom.clone()),
        "regis": txt.map(|t| t.regis.clone()).unwrap_or_default(),
        "registries": txt.map(XmppTxt::registry_jids).unwrap_or_default(),
        "provis": txt.map(|t| t.provis.clone()).unwrap_or_default(),
        "provisioning": txt.map(XmppTxt::provisioning_jids).unwrap_or_default(),
        "txt_error": error,
    })
}

/// Browses over mDNS for `timeout`; the latest resolution of each instance.
fn mdns(interfaces: &[String], timeout: Duration) -> Result<Vec<DiscoveredServer>> {
    let d = crate::announce::daemon(interfaces)?;
    let ty = format!("{SERVICE}.local.");
    let events = d
        .browse(&ty)
        .map_err(|e| Error::new(format!("mDNS browse: {e}")))?;
    let service = service_name(&Name::parse("local").map_err(|e| Error::new(e.to_string()))?)
        .map_err(|e| Error::new(e.to_string()))?;
    let end = Instant::now() + timeout;
    let mut found: Vec<DiscoveredServer> = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        if let ServiceEvent::ServiceResolved(r) = event {
            let Some(server) = from_mdns(&service, &r) else {
                continue;
            };
            match found.iter_mut().find(|s| s.instance == server.instance) {
                Some(old) => *old = server,
                None => found.push(server),
            }
        }
    }
    let _ = d.stop_browse(&ty);
    if let Ok(status) = d.shutdown() {
        let _ = status.recv_timeout(Duration::from_secs(2));
    }
    Ok(found)
}

/// A resolved mDNS service as a [`DiscoveredServer`]; its TXT strings go
/// through the library's parser like unicast ones.
fn from_mdns(service: &Name, r: &mdns_sd::ResolvedService) -> Option<DiscoveredServer> {
    let label = r.fullname.strip_suffix(&format!(".{}", r.ty_domain))?;
    let instance = service.prepend(label.as_bytes()).ok()?;
    let host = Name::parse(&r.host)
        .or_else(|_| Name::from_labels(r.host.trim_end_matches('.').split('.')))
        .ok()?;
    let mut addresses: Vec<IpAddr> = r.addresses.iter().map(|a| a.to_ip_addr()).collect();
    addresses.sort();
    let strings: Vec<Vec<u8>> = r
        .txt_properties
        .iter()
        .map(|p| {
            let mut s = p.key().as_bytes().to_vec();
            if let Some(v) = p.val() {
                s.push(b'=');
                s.extend_from_slice(v);
            }
            s
        })
        .collect();
    Some(DiscoveredServer {
        instance,
        host,
        port: r.port,
        priority: 0,
        addresses,
        txt: XmppTxt::from_strings(strings),
    })
}

/// Browses unicast DNS-SD at `server` under `domain`, within `timeout`.
fn unicast(server: &str, domain: &str, timeout: Duration) -> Result<Vec<DiscoveredServer>> {
    let addr: SocketAddr = server
        .to_socket_addrs()
        .map_err(|e| Error::new(format!("--dns {server}: {e}")))?
        .next()
        .ok_or_else(|| Error::new(format!("--dns {server}: no address")))?;
    let mut browse = Browse::new(domain).map_err(|e| Error::new(e.to_string()))?;
    let end = Instant::now() + timeout;
    let mut id: u16 = (std::process::id() as u16).wrapping_mul(31);
    loop {
        let queries = browse.next_queries();
        if queries.is_empty() {
            break;
        }
        for (name, rtype) in queries {
            id = id.wrapping_add(1);
            let response = ask(addr, id, &name, rtype, end)?;
            // NXDOMAIN or an empty answer: nothing to add.
            browse.add(response.records);
        }
    }
    Ok(browse.servers())
}

/// One question to `addr`: over UDP, again over TCP when the answer is
/// truncated. Two UDP tries share what is left of the time limit.
fn ask(addr: SocketAddr, id: u16, name: &Name, rtype: u16, end: Instant) -> Result<Response> {
    let what = || format!("{name} {} from {addr}", type_name(rtype));
    let query = message::query(id, name, rtype);
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .map_err(|_| Error::new("bind address"))?
    } else {
        "[::]:0".parse().map_err(|_| Error::new("bind address"))?
    };
    let socket = UdpSocket::bind(bind).map_err(net)?;
    socket.connect(addr).map_err(net)?;
    let mut buf = vec![0u8; 65535];
    for attempt in 0..2 {
        let left = end
            .checked_duration_since(Instant::now())
            .ok_or_else(|| Error::new(format!("time-out asking {}", what())))?;
        let wait = if attempt == 0 { left / 2 } else { left };
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(net)?;
        socket.send(&query).map_err(net)?;
        let until = Instant::now() + wait;
        while Instant::now() < until {
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(Error::new(format!("asking {}: {e}", what()))),
            };
            let Some(response) = answer_to(&buf[..n], id, &query) else {
                continue; // not ours: keep listening
            };
            let response = response.map_err(|e| Error::new(format!("{}: {e}", what())))?;
            if response.truncated {
                return ask_tcp(addr, id, &query, end)
                    .map_err(|e| Error::new(format!("{} over TCP: {}", what(), e.message)));
            }
            return Ok(response);
        }
    }
    Err(Error::new(format!("no answer to {}", what())))
}

/// The response in `msg` if it answers `query` (same id and question).
fn answer_to(
    msg: &[u8],
    id: u16,
    query: &[u8],
) -> Option<std::result::Result<Response, iotdisco::discovery::DiscoveryError>> {
    if msg.len() < query.len()
        || msg[..2] != id.to_be_bytes()
        || msg[12..query.len()] != query[12..]
    {
        return None;
    }
    Some(Response::parse(msg))
}

fn ask_tcp(addr: SocketAddr, id: u16, query: &[u8], end: Instant) -> Result<Response> {
    let left = end
        .checked_duration_since(Instant::now())
        .ok_or_else(|| Error::new("time-out"))?;
    let mut stream = TcpStream::connect_timeout(&addr, left).map_err(net)?;
    stream.set_read_timeout(Some(left)).map_err(net)?;
    stream.set_write_timeout(Some(left)).map_err(net)?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(net)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(net)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).map_err(net)?;
    match answer_to(&msg, id, query) {
        Some(r) => r.map_err(|e| Error::new(e.to_string())),
        None => Err(Error::new("the answer does not match the question")),
    }
}

/// A socket error as a command error (not the output-writing kind).
fn net(e: std::io::Error) -> Error {
    Error::new(format!("network: {e}"))
}
