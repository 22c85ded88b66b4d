/*
 * listener.h - listening sockets that outlive a configuration. A reload (SIGHUP) builds the
 * new service beside the running one; a server whose address did not change must keep its
 * socket and its open connections, so servers are not owned by the component that started
 * them but by this registry, keyed by address ("http [127.0.0.1]:4318"), and reference
 * counted by the components that use them.
 *
 * What a component owns is a binding: the handler (callback argument) requests on that
 * listener are dispatched to. A listener has at most one active binding, and during a reload
 * at most one staged one. The server's threads call listener_enter() when a request begins
 * (it returns the active binding's handler, held until listener_leave()); the main thread
 * swaps every staged binding in at once (listener_stage_commit), then unbinds the old ones,
 * which waits for the requests still running on them. Nothing about the transport is known
 * here: libmicrohttpd (server.c) uses it, and so can any other server (e.g. gRPC over
 * nghttp2) that can look its handler up per request or per stream.
 *
 * Threads: listener_add/_find/_put, the bind/unbind calls and the stage calls are made from
 * the thread that starts and stops services (the main thread); enter/leave from any thread.
 */
#ifndef LISTENER_H
#define LISTENER_H

#include <stddef.h>

#include "mt.h"

typedef struct listener listener_t;
typedef struct listener_binding listener_binding_t;

/* Closes a server (called once, by the last listener_put). */
typedef void (*listener_close_fn)(void *impl);

/* Registers a server the caller just started, under `key`, with one reference held by the
 * caller. Returns NULL when out of memory. */
listener_t *listener_add(const char *key, void *impl, listener_close_fn close);
/* listener_add, then `owner` bound to the new listener (*b) before the server serves: a request
 * must never find it without a handler. Returns the listener (the reference is owner's,
 * released with listener_release(*b)), or NULL with the reason in eb after close(impl). */
listener_t *listener_add_bound(const char *key, void *impl, listener_close_fn close, void *owner,
                               listener_binding_t **b, mt_errbuf_t *eb);
/* A reload offers a server its running listener (impl): MT_OK when it can take the new
 * settings (arg), else an error with the reason in eb (they need new daemons). */
typedef int (*listener_keep_fn)(void *impl, void *arg, mt_errbuf_t *eb);
/* What a server's start does first: a reload keeps the listener of an address it still listens
 * on (port 0 means "any free port": a new one each time). With one to keep that takes the new
 * settings, *l is it and owner is bound to it (staged, *b); with none, *l is NULL (start one,
 * with listener_add_bound). Returns MT_OK, or an error with the reason in eb. */
int listener_keep(const char *key, int port, listener_keep_fn keep, void *arg, void *owner,
                  listener_t **l, listener_binding_t **b, mt_errbuf_t *eb);
/* The listener registered under `key` that a reload may take over (one with an active binding
 * that this stage has not handed out yet), with a reference taken; else NULL. */
listener_t *listener_find(const char *key);
/* Drops a reference; the last one removes the listener from the registry and closes it. */
void listener_put(listener_t *l);
void *listener_impl(const listener_t *l);
const char *listener_key(const listener_t *l);

/* Binds `handler` to l: active at once when l has no active binding, staged (activated by
 * listener_stage_commit) when it has one. Returns NULL when out of memory. */
listener_binding_t *listener_bind(listener_t *l, void *handler);
/* Ends a binding: a staged one is discarded, an active one is deactivated (requests arriving
 * later get no handler), a replaced one is waited for: returns once every request that
 * entered it has left. Accepts NULL. */
void listener_unbind(listener_binding_t *b);

/* Unbinds b and drops the reference its owner holds on b's listener: what a component calls
 * when it stops. When that was the last reference the server is closed first (which ends its
 * requests), so a stop never waits for a slow client. Accepts NULL. */
void listener_release(listener_binding_t *b);

/* Request side: the active binding's handler (NULL when none: answer 503), held until
 * listener_leave(*held). */
void *listener_enter(listener_t *l, listener_binding_t **held);
void listener_leave(listener_binding_t *held); /* accepts NULL */

/* A reload: from stage_begin on, listener_find offers the running listeners, and binding one
 * stages the new handler; stage_commit activates every staged binding, stage_end closes the
 * stage (a failed reload just unbinds what it staged, then calls stage_end). */
void listener_stage_begin(void);
void listener_stage_commit(void);
void listener_stage_end(void);

/* Number of registered listeners (tests). */
size_t listener_count(void);

#endif
