//! The registrar: applies registry [`Operation`]s in order and makes them
//! durable before the master acts on them (Mesos's `Registrar`,
//! src/master/registrar.cpp).
//!
//! It runs on its own thread so that the master task never blocks on disk:
//! the master hands over an operation with a continuation (what to do once
//! it is durable, like a Mesos `defer`), keeps handling other commands, and
//! gets the continuation back as a command when the write has committed.
//! Operations that queue up while a write is in flight are committed
//! together in the next write, as Mesos's registrar batches them. A failed
//! write is fatal to the master, as in Mesos (`Registrar aborting`): the
//! master can no longer promise that what it acknowledged survives.
//!
//! Recovery happens here first: the thread opens the store, reads the
//! registry, records the new master in it and hands the registry to the
//! master (`Command::Recovered`).

use std::collections::BTreeSet;
use std::time::Instant;

use mesos_proto::v1::MasterInfo;
use tokio::sync::{mpsc, oneshot};

use crate::master::{Command, Master};
use crate::registry::{Key, Operation, OperationError, Registry, Store};

/// What the master does once an operation is durable (or turned out not to
/// apply). Runs inside the master task.
pub(crate) type Continuation = Box<dyn FnOnce(&mut Master, Result<(), OperationError>) + Send>;

struct Request {
    operation: Operation,
    then: Continuation,
}

/// The master's handle on the registrar thread.
#[derive(Debug)]
pub(crate) struct Registrar {
    requests: mpsc::UnboundedSender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// Fires when the registrar thread has exited and the store is closed.
pub(crate) type Closed = oneshot::Receiver<()>;

impl Registrar {
    /// Starts the thread: it recovers `store` (reporting
    /// `Command::Recovered` to `master`), records `info` as the current
    /// master, then serves operations until the [`Registrar`] is dropped
    /// and every operation queued before is written.
    pub(crate) fn start(
        store: Box<dyn Store>,
        info: MasterInfo,
        master: mpsc::UnboundedSender<Command>,
    ) -> std::io::Result<(Registrar, Closed)> {
        let (requests, queue) = mpsc::unbounded_channel();
        let (closed_tx, closed) = oneshot::channel();
        std::thread::Builder::new()
            .name("registrar".into())
            .spawn(move || {
                run(store, info, queue, &master);
                // `run` dropped the store: the file is closed.
                let _ = closed_tx.send(());
            })?;
        Ok((Registrar { requests }, closed))
    }

    /// Queues `operation`; `then` runs in the master task once it is
    /// durable. Operations are applied in the order they are queued.
    pub(crate) fn apply(
        &self,
        operation: Operation,
        then: impl FnOnce(&mut Master, Result<(), OperationError>) + Send + 'static,
    ) {
        let request = Request {
            operation,
            then: Box::new(then),
        };
        if self.requests.send(request).is_err() {
            // The thread stopped after a failed write; the master has been
            // told (Command::RegistryFailed) and is stopping.
            tracing::error!("registrar stopped; dropping registry operation");
        }
    }

    /// Queues an operation nobody waits for (its order still matters).
    pub(crate) fn record(&self, operation: Operation) {
        self.apply(operation, |_, result| {
            if let Err(error) = result {
                tracing::warn!(%error, "registry operation did not apply");
            }
        });
    }
}

fn run(
    mut store: Box<dyn Store>,
    info: MasterInfo,
    mut queue: mpsc::UnboundedReceiver<Request>,
    master: &mpsc::UnboundedSender<Command>,
) {
    let Some(mut registry) = recover(store.as_mut(), info, master) else {
        return;
    };
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let mut keys = BTreeSet::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for request in batch {
            let result = request.operation.apply(&mut registry);
            if let Ok(Some(key)) = &result {
                keys.insert(key.clone());
            }
            outcomes.push((result.map(|_| ()), request.then));
        }
        if !keys.is_empty() {
            let started = Instant::now();
            if let Err(error) = store.store(&registry, &keys) {
                let _ = master.send(Command::RegistryFailed(error));
                return;
            }
            let _ = master.send(Command::RegistryStored(started.elapsed()));
        }
        for (result, then) in outcomes {
            // The master may be gone (shutting down); what it queued is
            // still written, until the queue is drained and closed.
            let _ = master.send(Command::Registered { result, then });
        }
    }
}

/// Reads the registry and records the recovering master in it.
fn recover(
    store: &mut dyn Store,
    info: MasterInfo,
    master: &mpsc::UnboundedSender<Command>,
) -> Option<Registry> {
    let recovered = store.recover().and_then(|mut registry| {
        // Recording the master cannot fail to apply; only the write can.
        let keys: BTreeSet<Key> = Operation::RecordMaster(info)
            .apply(&mut registry)
            .ok()
            .flatten()
            .into_iter()
            .collect();
        let started = Instant::now();
        store.store(&registry, &keys)?;
        let _ = master.send(Command::RegistryStored(started.elapsed()));
        Ok(registry)
    });
    match recovered {
        Ok(registry) => {
            let _ = master.send(Command::Recovered(Ok(registry.clone())));
            Some(registry)
        }
        Err(error) => {
            let _ = master.send(Command::Recovered(Err(error)));
            None
        }
    }
}
