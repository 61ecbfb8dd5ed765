// java JvmWorkers.java WORKDIR
// A JVM that keeps computing: 8 worker threads add to the entries of a 200,000-entry map and to a running total,
// under a read lock; a checker thread answers requests through files in WORKDIR. Writing WORKDIR/ask makes it take
// the write lock (the workers pause), verify that the map still has its 200,000 entries, that every entry is its
// key's initial value plus what was added to it, and that the additions sum to the total, then write
// "OK total=T threads=N pid=P" (or "CORRUPT <what> pid=P") to WORKDIR/answer, removing ask. It writes its pid to
// WORKDIR/ready once the map is built and the workers run.
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantReadWriteLock;

public class JvmWorkers {
    static final int ENTRIES = 200_000;
    static final int WORKERS = 8;
    static final ConcurrentHashMap<Integer, Long> map = new ConcurrentHashMap<>();
    static final AtomicLong total = new AtomicLong();
    static final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();

    static long initial(int key) { return key * 7L + 3; }

    public static void main(String[] args) throws Exception {
        Path work = Path.of(args[0]);
        for (int key = 0; key < ENTRIES; key++) {
            map.put(key, initial(key));
        }
        for (int i = 0; i < WORKERS; i++) {
            Thread worker = new Thread(JvmWorkers::work, "worker-" + i);
            worker.setDaemon(true);
            worker.start();
        }
        write(work, "ready", Long.toString(ProcessHandle.current().pid()));
        Path ask = work.resolve("ask");
        while (true) {
            if (Files.exists(ask)) {
                String answer = check();
                Files.delete(ask);
                write(work, "answer", answer);
            }
            Thread.sleep(20);
        }
    }

    static void work() {
        var random = ThreadLocalRandom.current();
        while (true) {
            lock.readLock().lock();
            try {
                for (int i = 0; i < 1000; i++) {
                    int key = random.nextInt(ENTRIES);
                    long add = 1 + random.nextInt(5);
                    map.merge(key, add, Long::sum);
                    total.addAndGet(add);
                }
            } finally {
                lock.readLock().unlock();
            }
            Thread.yield();
        }
    }

    static String check() {
        long pid = ProcessHandle.current().pid();
        lock.writeLock().lock();
        try {
            if (map.size() != ENTRIES) {
                return "CORRUPT size=" + map.size() + " pid=" + pid;
            }
            long added = 0;
            for (int key = 0; key < ENTRIES; key++) {
                Long value = map.get(key);
                if (value == null || value < initial(key)) {
                    return "CORRUPT entry " + key + "=" + value + " pid=" + pid;
                }
                added += value - initial(key);
            }
            if (added != total.get()) {
                return "CORRUPT added=" + added + " total=" + total.get() + " pid=" + pid;
            }
            long workers = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("worker-") && t.isAlive()).count();
            if (workers != WORKERS) {
                return "CORRUPT workers=" + workers + " pid=" + pid;
            }
            return "OK total=" + added + " threads=" + Thread.activeCount() + " pid=" + pid;
        } finally {
            lock.writeLock().unlock();
        }
    }

    static void write(Path work, String name, String text) throws Exception {
        Path temporary = work.resolve(name + ".tmp");
        Files.writeString(temporary, text + "\n");
        Files.move(temporary, work.resolve(name), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
