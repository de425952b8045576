//! TCP basics: accept, connect, read and write park and resume their fibers; `BufReader` over a stream; 1,000 connections on one thread.

use super::*;

// ---- parking and resuming -------------------------------------------------

/// Accept, connect, read and write park their fiber and resume it: one
/// listener fiber and 50 client fibers on one thread, each client's request
/// sent in two halves, the replies sent only once every request is in (in
/// reverse order), every byte checked. When the server has all requests,
/// `spindle::tasks()` shows all 50 clients parked in I/O: each one blocked
/// in `read` lets the others run.
#[test]
fn fifty_clients_park_and_resume_on_one_thread() {
    const CLIENTS: usize = 50;
    let _w = watchdog("fifty_clients_park_and_resume_on_one_thread");
    let len = |i: usize| 1000 + i * 331;
    spindle::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                conns.push(listener.accept().unwrap().0);
            }
            let mut by_client: Vec<Option<(TcpStream, Vec<u8>)>> =
                (0..CLIENTS).map(|_| None).collect();
            for mut conn in conns {
                let mut header = [0; 8];
                conn.read_exact(&mut header).unwrap();
                let i = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
                let n = u32::from_le_bytes(header[4..].try_into().unwrap()) as usize;
                assert_eq!(n, len(i), "client {i}'s header");
                let mut body = vec![0; n];
                conn.read_exact(&mut body).unwrap();
                check_pattern(i, 0, &body);
                assert!(by_client[i].is_none(), "two connections said client {i}");
                by_client[i] = Some((conn, body));
            }
            let parked = spindle::tasks()
                .iter()
                .filter(|t| t.name().is_some_and(|n| n.starts_with("client-")))
                .filter(|t| t.state() == TaskState::WaitingIo)
                .count();
            assert_eq!(parked, CLIENTS, "clients parked in read");
            for slot in by_client.into_iter().rev() {
                let (mut conn, body) = slot.unwrap();
                conn.write_all(&body).unwrap();
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                spindle::Builder::new()
                    .name(format!("client-{i}"))
                    .spawn(move || {
                        spindle::sleep(Duration::from_millis((i % 7) as u64));
                        let mut s = TcpStream::connect(addr).unwrap();
                        let mut req = Vec::new();
                        req.extend_from_slice(&(i as u32).to_le_bytes());
                        req.extend_from_slice(&(len(i) as u32).to_le_bytes());
                        req.extend_from_slice(&patterned(i, len(i)));
                        let (a, b) = req.split_at(req.len() / 2);
                        s.write_all(a).unwrap();
                        spindle::sleep(Duration::from_millis(1));
                        s.write_all(b).unwrap();
                        let mut reply = vec![0; len(i)];
                        s.read_exact(&mut reply).unwrap();
                        check_pattern(i, 0, &reply);
                        assert_eq!(s.read(&mut [0; 1]).unwrap(), 0, "client {i}: EOF");
                    })
                    .unwrap()
            })
            .collect();
        server.join().unwrap();
        for r in spindle::join_all(clients) {
            r.unwrap();
        }
    });
}

// ---- BufReader ------------------------------------------------------------

/// `BufReader::read_line` over an owned `TcpStream`: lines that arrive in
/// pieces split mid-line, with pauses between, come out whole.
#[test]
fn buf_reader_reads_lines_from_an_owned_stream() {
    let _w = watchdog("buf_reader_reads_lines_from_an_owned_stream");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            for piece in ["hel", "lo\nwor", "ld\n", "", "last line, no newline"] {
                conn.write_all(piece.as_bytes()).unwrap();
                spindle::sleep(Duration::from_millis(5));
            }
        });
        let mut reader = BufReader::new(TcpStream::connect(addr).unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            lines.push(line);
        }
        assert_eq!(lines, ["hello\n", "world\n", "last line, no newline"]);
        server.join().unwrap();
    });
}

/// `BufReader` over `&TcpStream`, with one fiber writing requests while
/// another reads the replies through the same stream (and the server
/// reading and writing one stream through `&` as well).
#[test]
fn buf_reader_over_a_shared_stream_with_a_concurrent_writer() {
    const LINES: usize = 200;
    let _w = watchdog("buf_reader_over_a_shared_stream_with_a_concurrent_writer");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut served = 0;
            for line in BufReader::new(&conn).lines() {
                let reply = format!("{}\n", line.unwrap().to_uppercase());
                (&conn).write_all(reply.as_bytes()).unwrap();
                served += 1;
            }
            served
        });
        let stream = Rc::new(TcpStream::connect(addr).unwrap());
        let writer = spindle::spawn({
            let stream = Rc::clone(&stream);
            move || {
                for i in 0..LINES {
                    (&*stream)
                        .write_all(format!("line {i}\n").as_bytes())
                        .unwrap();
                    if i % 16 == 0 {
                        spindle::sleep(Duration::from_millis(1));
                    }
                }
                stream.shutdown(Shutdown::Write).unwrap();
            }
        });
        let reader = spindle::spawn({
            let stream = Rc::clone(&stream);
            move || {
                BufReader::new(&*stream)
                    .lines()
                    .collect::<io::Result<Vec<String>>>()
                    .unwrap()
            }
        });
        writer.join().unwrap();
        let lines = reader.join().unwrap();
        let expected: Vec<String> = (0..LINES).map(|i| format!("LINE {i}")).collect();
        assert_eq!(lines, expected);
        assert_eq!(server.join().unwrap(), LINES);
    });
}

// ---- many connections -------------------------------------------------------

/// 1,000 concurrent loopback connections on one thread, each echoing
/// 64 KiB with every byte checked. Each client writes from one fiber and
/// reads from another through a shared `&TcpStream` (a client that only
/// wrote, then read, would deadlock against full buffers); a barrier holds
/// every client until all 1,000 are connected.
#[test]
fn thousand_concurrent_connections_echo_64_kib_each() {
    const CONNS: usize = 1000;
    const BYTES: usize = 64 * 1024;
    const CHUNK: usize = 8 * 1024;
    let _w = watchdog("thousand_concurrent_connections_echo_64_kib_each");
    raise_nofile_limit(2 * CONNS as u64 + 100);
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let echoes: Vec<_> = (0..CONNS)
                .map(|_| {
                    let (mut conn, _) = listener.accept().unwrap();
                    spindle::spawn(move || {
                        let mut buf = vec![0; CHUNK];
                        let mut total = 0;
                        loop {
                            match conn.read(&mut buf).unwrap() {
                                0 => return total,
                                n => {
                                    conn.write_all(&buf[..n]).unwrap();
                                    total += n;
                                }
                            }
                        }
                    })
                })
                .collect();
            spindle::join_all(echoes)
        });
        let barrier = Rc::new(spindle::sync::Barrier::new(CONNS));
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                let barrier = Rc::clone(&barrier);
                spindle::spawn(move || {
                    let stream = Rc::new(TcpStream::connect(addr).unwrap());
                    barrier.wait();
                    let writer = spindle::spawn({
                        let stream = Rc::clone(&stream);
                        move || {
                            let mut chunk = vec![0; CHUNK];
                            for offset in (0..BYTES).step_by(CHUNK) {
                                for (k, b) in chunk.iter_mut().enumerate() {
                                    *b = pattern(i, offset + k);
                                }
                                (&*stream).write_all(&chunk).unwrap();
                            }
                            stream.shutdown(Shutdown::Write).unwrap();
                        }
                    });
                    let mut buf = vec![0; CHUNK];
                    let mut got = 0;
                    loop {
                        match (&*stream).read(&mut buf).unwrap() {
                            0 => break,
                            n => {
                                check_pattern(i, got, &buf[..n]);
                                got += n;
                            }
                        }
                    }
                    writer.join().unwrap();
                    got
                })
            })
            .collect();
        for (i, r) in spindle::join_all(clients).into_iter().enumerate() {
            assert_eq!(r.unwrap(), BYTES, "client {i} got back");
        }
        for r in server.join().unwrap() {
            assert_eq!(r.unwrap(), BYTES);
        }
    });
}
