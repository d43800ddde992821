/** Keeps a process (the router, or a worker) running through an unhandled rejection or uncaught error. */

export function keepRunningOnStrayErrors(who: string): void {
  // Background work of a function (timers, un-awaited promises) must not take the process down.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error(`unhandled rejection in ${who} (it keeps running):`, event.reason);
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error(`uncaught error in ${who} (it keeps running):`, event.error);
  });
}
