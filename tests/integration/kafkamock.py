"""librdkafka's mock Kafka cluster (build/kafka_mock, tests/kafka/mockcluster.c) on loopback,
driven through its stdin commands: topics, injected request errors, brokers down and up, raw
messages. No Kafka broker is packaged for Debian 12; this is the same protocol."""
import os
import subprocess
import threading

import harness

MOCK = os.path.join(os.path.dirname(harness.MELTP), "kafka_mock")


class MockKafka:
    def __init__(self, brokers=3, topics=(("otlp_spans", 4),)):
        self.proc = subprocess.Popen([MOCK, str(brokers)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, bufsize=1)
        harness._procs.append(self.proc)
        first = self.proc.stdout.readline().split()
        assert first and first[0] == "bootstrap", first
        self.bootstrap = first[1]
        self.lock = threading.Lock()
        for name, parts in topics:
            self.cmd("topic %s %d" % (name, parts))

    def brokers_yaml(self):
        return "[" + ", ".join(self.bootstrap.split(",")) + "]"

    def cmd(self, line):
        """Runs one command; raises unless the helper answers ok."""
        with self.lock:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().strip()
        assert reply == "ok", "%s -> %s" % (line, reply)

    def produce_raw(self, topic, partition, payload, tenant=None):
        self.cmd("produce %s %d %s%s" % (topic, partition, payload.hex(),
                                         " " + tenant if tenant else ""))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
