/** The CPU time of a worker's main thread, read from /proc (the router's view; a worker may not read /proc). */

function cpuClock(): (pid: number) => number | undefined {
  // schedstat's first field: nanoseconds the thread has run (user + system), exact; stat's utime and
  // stime are clock ticks (USER_HZ, 100 on Linux), 10 ms apart. The main thread's id is the pid.
  const schedstat = (pid: number) => {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/schedstat`);
    return Number(text.slice(0, text.indexOf(" "))) / 1e6;
  };
  const stat = (pid: number) => {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  let read = schedstat;
  try {
    schedstat(Deno.pid);
  } catch {
    read = stat;
    console.error("functions_host: no /proc/<pid>/schedstat; CPU time in 10 ms clock ticks");
  }
  return (pid) => {
    try {
      return read(pid);
    } catch {
      return undefined; // the worker is gone
    }
  };
}

let readThreadCpu: ((pid: number) => number | undefined) | undefined;

/** The CPU time of a process's main thread, where its JavaScript runs; undefined once it is gone. */
export function threadCpuMs(pid: number): number | undefined {
  readThreadCpu ??= cpuClock(); // the router's; a worker may not read /proc
  return readThreadCpu(pid);
}
