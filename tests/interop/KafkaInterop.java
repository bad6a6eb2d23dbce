// Kafka's own Java client (kafka-clients) as a foreign producer and reader, for the interop
// tests (tests/integration/test_interop.py). One file, run with Java's single-file launcher
// against the jars the broker harness already fetched:
//
//   java -cp '<kafka lib>/*' KafkaInterop.java produce <bootstrap> <compression>
//       Sends each line of stdin, `topic TAB key TAB value`, keyed, with acks=all, idempotence
//       and the compression type given; exits 0 once every record is acknowledged and prints
//       `sent <n>`, else prints the first delivery error and exits 1.
//   java -cp '<kafka lib>/*' KafkaInterop.java consume <bootstrap> <timeout-s> <topic>...
//       Reads every topic read_committed from the start of each partition to the end it has
//       now (the last stable offset), and prints `topic TAB partition TAB offset TAB key TAB
//       value` a record (an absent key or value as NULL, as `kcat -Z` prints it). Exits 1 if
//       that takes longer than the timeout.
//
// Records are UTF-8 text without tabs or line breaks (the project's JSON is compact).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaInterop {
    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("produce")) {
            produce(args[1], args[2]);
        } else if (args.length >= 4 && args[0].equals("consume")) {
            consume(args[1], Long.parseLong(args[2]), Arrays.asList(args).subList(3, args.length));
        } else {
            System.err.println("usage: KafkaInterop produce <bootstrap> <compression>"
                    + " | consume <bootstrap> <timeout-s> <topic>...");
            System.exit(2);
        }
    }

    static void produce(String bootstrap, String compression) throws Exception {
        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        config.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        config.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(config)) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] parts = line.split("\t", 3);
                sent.add(producer.send(new ProducerRecord<>(parts[0], parts[1], parts[2])));
            }
            producer.flush();
            for (Future<RecordMetadata> future : sent) {
                future.get(); // the delivery error, if any
            }
        }
        System.out.println("sent " + sent.size());
    }

    static String orNull(String text) {
        return text == null ? "NULL" : text;
    }

    static void consume(String bootstrap, long timeoutSeconds, List<String> topics) {
        Properties config = new Properties();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        config.put(
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        long deadline = System.nanoTime() + timeoutSeconds * 1_000_000_000L;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(config)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (String topic : topics) {
                for (PartitionInfo info : consumer.partitionsFor(topic)) {
                    partitions.add(new TopicPartition(topic, info.partition()));
                }
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            while (partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) {
                    System.err.println("could not read " + topics + " to its end in "
                            + timeoutSeconds + " s");
                    System.exit(1);
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    System.out.println(String.join("\t", r.topic(), Integer.toString(r.partition()),
                            Long.toString(r.offset()), orNull(r.key()), orNull(r.value())));
                }
            }
        }
    }
}
