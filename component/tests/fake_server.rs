//! The component against a fake XEP-0114 server on 127.0.0.1: a tokio
//! listener that plays the server's side of the stream (header with an id,
//! handshake digest checked against the secret) and exchanges stanzas.
//!
//! Covers: the handshake, a register IQ and disco#info answered through the
//! engine, an IQ of another namespace refused, the subscription rules, the
//! server dropping the connection and the component reconnecting by itself
//! (registry kept), a clean shutdown closing the stream, and a wrong secret
//! ending `serve` with a clear error.

use std::sync::Arc;
use std::time::Duration;

use iotdisco::{Config, Engine, Registry};
use iotdisco_component::stream::{Frame, Splitter, handshake_digest};
use iotdisco_component::{Connect, Settings, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const DOMAIN: &str = "discovery.test";
const SECRET: &str = "s3cret";
const WAIT: Duration = Duration::from_secs(10);

/// The server's end of one component connection.
struct Peer {
    tcp: TcpStream,
    splitter: Splitter,
}

impl Peer {
    /// Accepts a component, checks its header and handshake; answers the
    /// handshake with success if its digest matches `SECRET`, else with a
    /// `not-authorized` stream error (and returns `None`).
    async fn accept(listener: &TcpListener, stream_id: &str) -> Option<Peer> {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the component connects")
            .unwrap();
        let mut p = Peer {
            tcp,
            splitter: Splitter::new(),
        };
        let Frame::Header(h) = p.frame().await else {
            panic!("no stream header")
        };
        let h = String::from_utf8(h).unwrap();
        assert!(h.contains("xmlns='jabber:component:accept'"), "{h}");
        assert!(h.contains(&format!("to='{DOMAIN}'")), "{h}");
        p.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
             xmlns='jabber:component:accept' from='{DOMAIN}' id='{stream_id}'>"
        ))
        .await;
        let handshake = p.recv().await;
        if handshake
            == format!(
                "<handshake>{}</handshake>",
                handshake_digest(stream_id, SECRET)
            )
        {
            p.send("<handshake/>").await;
            Some(p)
        } else {
            p.send(
                "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
                 </stream:error></stream:stream>",
            )
            .await;
            None
        }
    }

    async fn send(&mut self, s: &str) {
        self.tcp.write_all(s.as_bytes()).await.unwrap();
    }

    async fn frame(&mut self) -> Frame {
        let mut buf = [0u8; 4096];
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(f) = self.splitter.next_frame().unwrap() {
                    return f;
                }
                let n = self.tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "the component closed the connection");
                self.splitter.push(&buf[..n]);
            }
        })
        .await
        .expect("a frame from the component in time")
    }

    async fn recv(&mut self) -> String {
        match self.frame().await {
            Frame::Element(e) => String::from_utf8(e).unwrap(),
            other => panic!("expected a stanza, got {other:?}"),
        }
    }

    /// Sends `stanza` and returns the component's answer.
    async fn ask(&mut self, stanza: &str) -> String {
        self.send(stanza).await;
        self.recv().await
    }
}

fn engine() -> Arc<Engine> {
    let settings = Settings::resolve(iotdisco_component::Args {
        domain: Some(DOMAIN.into()),
        secret: Some(SECRET.into()),
        memory: true,
        identity_name: Some("Fake Test Registry".into()),
        ..Default::default()
    })
    .unwrap();
    Arc::new(
        Engine::new(
            DOMAIN,
            Registry::new(Config::default()),
            settings.engine_config(),
        )
        .unwrap(),
    )
}

fn connect(addr: std::net::SocketAddr, secret: &str) -> Connect {
    let mut c = Connect::new(&addr.to_string(), DOMAIN, secret);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(200);
    c
}

const REGISTER: &str = "<iq type='set' from='thing@example.org/imc' to='discovery.test' id='r1'>\
    <register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='394872348732948723'/>\
    <str name='KEY' value='4857402340298342'/></register></iq>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reconnects_and_closes_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = engine();
    let (stop, stopped) = oneshot::channel::<()>();
    let component = tokio::spawn(serve(engine.clone(), connect(addr, SECRET), async {
        let _ = stopped.await;
    }));

    let mut peer = Peer::accept(&listener, "id-1")
        .await
        .expect("handshake accepted");
    assert_eq!(
        peer.ask(REGISTER).await,
        "<iq type='result' from='discovery.test' to='thing@example.org/imc' id='r1'/>"
    );
    let info = peer
        .ask(
            "<iq type='get' from='c@example.org/x' to='discovery.test' id='i1'>\
              <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(
        info.starts_with("<iq type='result' from='discovery.test' to='c@example.org/x' id='i1'>"),
        "{info}"
    );
    assert!(
        info.contains("<identity category='component' type='generic' name='Fake Test Registry'/>"),
        "{info}"
    );
    assert!(
        info.contains("<feature var='urn:xmpp:iot:discovery'/>"),
        "{info}"
    );
    assert_eq!(
        peer.ask(
            "<iq type='get' from='c@example.org/x' to='discovery.test' id='v1'>\
                  <query xmlns='jabber:iq:version'/></iq>"
        )
        .await,
        "<iq type='error' from='discovery.test' to='c@example.org/x' id='v1'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );

    // Subscription: subscribed + our subscribe; a probe and available
    // presence get no answer (the next thing the server sees is the reply to
    // the IQ sent after them).
    peer.send("<presence from='thing@example.org/imc' to='discovery.test' type='subscribe'/>")
        .await;
    assert_eq!(
        peer.recv().await,
        "<presence from='discovery.test' to='thing@example.org' type='subscribed'/>"
    );
    assert_eq!(
        peer.recv().await,
        "<presence from='discovery.test' to='thing@example.org' type='subscribe'/>"
    );
    peer.send("<presence from='thing@example.org/imc' to='discovery.test' type='probe'/>")
        .await;
    peer.send("<presence from='thing@example.org/imc' to='discovery.test'/>")
        .await;
    let items = peer
        .ask(
            "<iq type='get' from='c@example.org/x' to='discovery.test' id='t1'>\
              <query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        )
        .await;
    assert_eq!(
        items,
        "<iq type='result' from='discovery.test' to='c@example.org/x' id='t1'>\
         <query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
    );

    // The server goes away; the component comes back by itself and still
    // knows the thing.
    drop(peer);
    let mut peer = Peer::accept(&listener, "id-2")
        .await
        .expect("handshake accepted again");
    let again = peer.ask(&REGISTER.replace("r1", "r2")).await;
    assert_eq!(
        again,
        "<iq type='result' from='discovery.test' to='thing@example.org/imc' id='r2'/>"
    );
    assert_eq!(engine.registry().len(), 1);

    // SIGTERM's path: the component closes its stream and returns Ok.
    stop.send(()).unwrap();
    assert_eq!(peer.frame().await, Frame::End);
    peer.send("</stream:stream>").await;
    let result = tokio::time::timeout(WAIT, component)
        .await
        .expect("serve returns")
        .unwrap();
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn a_wrong_secret_is_reported_clearly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let component = tokio::spawn(serve(
        engine(),
        connect(addr, "wrong"),
        std::future::pending(),
    ));
    assert!(Peer::accept(&listener, "id-x").await.is_none());
    let result = tokio::time::timeout(WAIT, component)
        .await
        .expect("serve gives up")
        .unwrap();
    let e = result.unwrap_err();
    assert_eq!(
        e,
        format!("{addr} refused the handshake for {DOMAIN} (not-authorized): the secret is wrong")
    );
}

#[tokio::test]
async fn a_server_that_is_not_up_yet_is_retried() {
    // Reserve a port, close it: the first attempts are refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let component = tokio::spawn(serve(engine(), connect(addr, SECRET), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut peer = Peer::accept(&listener, "late")
        .await
        .expect("handshake accepted");
    assert_eq!(
        peer.ask(REGISTER).await,
        "<iq type='result' from='discovery.test' to='thing@example.org/imc' id='r1'/>"
    );
    stop.send(()).unwrap();
    assert_eq!(peer.frame().await, Frame::End);
    assert_eq!(
        tokio::time::timeout(WAIT, component)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
}
