//! librdkafka's mock cluster, run in-process for the quickstart and fast tests.
//!
//! The mock cluster handle is not `Send`, so it lives on a thread of its own for as long as the
//! [`EmbeddedKafka`] value lives; requests to it (create a topic) are sent over a channel.

use std::{
    sync::mpsc::{self, Sender},
    thread::JoinHandle,
};

use rdkafka::mocking::MockCluster;

/// Requests served by the thread that owns the mock cluster.
enum Request {
    CreateTopics(Vec<(String, i32)>, Sender<anyhow::Result<()>>),
    Stop,
}

/// A running in-process Kafka mock cluster; stopped when dropped.
pub struct EmbeddedKafka {
    bootstrap: String,
    requests: Sender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Starts a one-broker mock cluster and creates `topics` (name, partitions) on it.
    ///
    /// # Errors
    /// librdkafka could not create the cluster or a topic.
    pub fn start(topics: &[(String, i32)]) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<String>>();
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("kafka-embedded".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                while let Ok(req) = req_rx.recv() {
                    match req {
                        Request::CreateTopics(topics, reply) => {
                            let result = topics.iter().try_for_each(|(name, partitions)| {
                                cluster.create_topic(name, *partitions, 1).map_err(|e| {
                                    anyhow::anyhow!("creating embedded topic {name}: {e}")
                                })
                            });
                            let _ = reply.send(result);
                        }
                        Request::Stop => break,
                    }
                }
            })?;
        let bootstrap = ready_rx.recv()??;
        let embedded = Self {
            bootstrap,
            requests: req_tx,
            thread: Some(thread),
        };
        embedded.create_topics(topics)?;
        Ok(embedded)
    }

    /// `bootstrap.servers` of the mock cluster.
    pub(crate) fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates topics on the mock cluster (its CreateTopics admin API is not implemented, so
    /// this goes through the mock API instead).
    ///
    /// # Errors
    /// librdkafka refused a topic.
    pub(crate) fn create_topics(&self, topics: &[(String, i32)]) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.requests
            .send(Request::CreateTopics(topics.to_vec(), tx))
            .map_err(|_| anyhow::anyhow!("the embedded Kafka thread has stopped"))?;
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the embedded Kafka thread has stopped"))?
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
