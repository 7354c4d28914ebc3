// End to end: the real @permaweb/aoconnect 0.0.98 against `aos serve` on 127.0.0.1 (spec §7).
// Run by tests/test_http_aoconnect.py. Every request is logged; one that would leave the machine fails the run.
// The last line on stdout is a JSON summary the Python side checks further.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const env = process.env;
const BASE = new URL(env.MU_URL);
const REWRITE = new Set(['su-router.ao-testnet.xyz', 'arweave.net', 'cache.forward.computer']);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const requests = [];
const escapes = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const raw = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const url = new URL(raw);
  const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
  if (REWRITE.has(url.hostname)) {
    url.protocol = BASE.protocol;
    url.host = BASE.host;
  } else if (!LOOPBACK.has(url.hostname)) {
    escapes.push(url.href);
    throw new Error(`test: a request would leave the machine: ${url.href}`);
  }
  requests.push(`${method} ${url.pathname}${url.search}`);
  return realFetch(url.href, init);
};

// imported after the wrapper: aoconnect and scheduler-utils capture globalThis.fetch when they load
const ao = await import(pathToFileURL(`${env.AOCONNECT_ROOT}/node_modules/@permaweb/aoconnect/dist/index.js`).href);
const { connect, createDataItemSigner } = ao;
const jwk = JSON.parse(readFileSync(env.WALLET, 'utf8'));
const signer = createDataItemSigner(jwk);
const c = connect({ MODE: 'legacy', MU_URL: env.MU_URL, CU_URL: env.CU_URL, GATEWAY_URL: env.GATEWAY_URL,
  GRAPHQL_URL: env.GRAPHQL_URL });
const summary = { steps: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(cond, what, detail) {
  if (!cond) throw new Error(`check failed: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail).slice(0, 800)}`);
}
async function get(path) {
  const res = await fetch(new URL(path, BASE).href);
  return { status: res.status, body: await res.json() };
}
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (...bufs) => { const h = createHash('sha256'); bufs.forEach((b) => h.update(b)); return h.digest(); };
const tag = (tags, name) => (tags || []).find((t) => t.name === name)?.value;
const authority = { name: 'Authority', value: env.AUTHORITY };
async function spawn(name, extra = []) {
  return c.spawn({ module: env.AOS_MODULE, scheduler: env.SCHEDULER, signer,
    tags: [{ name: 'Name', value: name }, authority, ...extra] });
}
async function evalIn(pid, code) {
  const id = await c.message({ process: pid, signer, tags: [{ name: 'Action', value: 'Eval' }], data: code });
  return { id, res: await c.result({ message: id, process: pid }) };
}
async function page(pid, extra = '') { return (await get(`/${pid}?limit=1000${extra}`)).body; }
async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const step = (n) => summary.steps.push(n);

// 2. spawn: the module is looked up on the gateway first, then the item goes to the MU
const before = requests.length;
const A = await spawn('e2e-A');
check(/^[A-Za-z0-9_-]{43}$/.test(A), 'spawn id', A);
const spawnReqs = requests.slice(before);
const gq = spawnReqs.findIndex((r) => r === 'POST /graphql');
const mu = spawnReqs.findIndex((r) => r === 'POST /');
check(gq >= 0 && mu > gq, 'graphql before POST /', spawnReqs);
const proc = (await get(`/processes/${A}`)).body;
check(proc.process_id === A && proc.owner.address === env.ADDRESS, 'SU /processes', proc);
check(tag(proc.tags, 'Timestamp') && tag(proc.tags, 'Type') === 'Process' && tag(proc.tags, 'SDK') === 'aoconnect',
  'process tags', proc.tags);
step(2);

// 1. signer interop (Python checks the signed bytes); Python-built items pass arbundles verify and the MU
const signed = await c.signMessage({ process: A, data: 'return 3', tags: [{ name: 'Action', value: 'Eval' }], signer });
summary.signed = { id: signed.id, raw: Buffer.from(signed.raw).toString('base64') };
summary.pyItems = [];
for (const item of JSON.parse(readFileSync(env.PY_ITEMS, 'utf8'))) {
  const bytes = Buffer.from(item, 'base64');
  summary.pyItems.push(await c.sendSignedMessage({ id: b64url(sha256(bytes.subarray(2, 514))), raw: bytes }));
}
const flipped = Buffer.from(signed.raw);
flipped[flipped.length - 1] ^= 1;
const bad = await fetch(env.MU_URL, { method: 'POST', body: flipped, headers: { 'Content-Type': 'application/octet-stream' } });
const badBody = await bad.json();
check(bad.status === 400 && typeof badBody.error === 'string', 'flipped bit refused', { status: bad.status, badBody });
step(1);

// 3. spawn negative: unknown module, and a module record without Input-Encoding
const n0 = requests.filter((r) => r === 'POST /').length;
let err = null;
try { await c.spawn({ module: 'x'.repeat(43), scheduler: env.SCHEDULER, signer }); } catch (e) { err = e; }
check(err, 'unknown module rejected');
err = null;
try { await c.spawn({ module: env.BAD_MODULE, scheduler: env.SCHEDULER, signer }); } catch (e) { err = e; }
check(err && String(err.message || err).includes("Tag 'Input-Encoding'"), 'Input-Encoding rejected', String(err));
check(requests.filter((r) => r === 'POST /').length === n0, 'no POST / after a rejected spawn');
step(3);

// 4 + 5. message, its scheduling, its result (cached, deterministic)
const { id: m1, res: r1 } = await evalIn(A, 'return 1+1');
const node1 = (await get(`/${m1}?process-id=${A}`)).body;
const at = node1.assignment.tags;
check(node1.message.id === m1 && tag(at, 'Nonce') === '1' && tag(at, 'Epoch') === '0' && tag(at, 'Type') === 'Assignment'
  && tag(at, 'Message') === m1, 'assignment tags', at);
const rawA = Buffer.from(A, 'base64url');
check(tag(at, 'Hash-Chain') === b64url(sha256(rawA, sha256(rawA))), 'hash chain', at);
check(String(r1.Output.data).includes('2') && Array.isArray(r1.Messages) && Array.isArray(r1.Spawns)
  && Array.isArray(r1.Assignments) && !('Memory' in r1), 'result shape', r1);
check(JSON.stringify(await c.result({ message: m1, process: A })) === JSON.stringify(r1), 'result cached');
step(4); step(5);

// 6. results pagination with cursors
for (let i = 0; i < 3; i++) await evalIn(A, `return ${i}`);
const p1 = await c.results({ process: A, limit: 2 });
check(p1.edges.length === 2, 'two edges', p1);
const ord = (e) => JSON.parse(Buffer.from(e.cursor, 'base64').toString());
for (const e of p1.edges) { const cur = ord(e); check('timestamp' in cur && 'ordinate' in cur && cur.sort === 'ASC', 'cursor', cur); }
check(Number(ord(p1.edges[0]).ordinate) < Number(ord(p1.edges[1]).ordinate), 'ASC order');
const p2 = await c.results({ process: A, limit: 2, from: p1.edges[1].cursor });
check(p2.edges.length === 2 && Number(ord(p2.edges[0]).ordinate) === Number(ord(p1.edges[1]).ordinate) + 1, 'next page', p2);
const newest = await c.results({ process: A, sort: 'DESC', limit: 1 });
const all = await c.results({ process: A, limit: 100 });
check(Number(ord(newest.edges[0]).ordinate) === Math.max(...all.edges.map((e) => Number(ord(e).ordinate))), 'DESC newest');
step(6);

// 7. dry-run: From is the given Owner, nothing written
await evalIn(A, 'Handlers.add("WhoAmI", "WhoAmI", function(m) print("from=" .. m.From) end)');
const slotsBefore = (await page(A)).edges.length;
const resBefore = (await c.results({ process: A, limit: 1000 })).edges.length;
const dr = await c.dryrun({ process: A, tags: [{ name: 'Action', value: 'WhoAmI' }], Owner: env.ADDRESS });
check(String(dr.Output?.data).includes(`from=${env.ADDRESS}`), 'dry-run From', dr);
check((await page(A)).edges.length === slotsBefore, 'dry-run left the schedule alone');
check((await c.results({ process: A, limit: 1000 })).edges.length === resBefore, 'dry-run left results alone');
step(7);

// 8. outbox crank: A sends to B; B handles it with From = A
const B = await spawn('e2e-B');
await evalIn(B, 'Handlers.add("Ping", "Ping", function(m) print("ping from " .. m.From) end)');
const aSlots = (await page(A)).edges.length;
const { id: sendId } = await evalIn(A, `Send({Target = "${B}", Action = "Ping", Data = "hi"})`);
const pushed = await until('the pushed message on B', async () => (await page(B)).edges.find(
  (e) => tag(e.node.message.tags, 'Pushed-For') === sendId));
const ptags = pushed.node.message.tags;
check(tag(ptags, 'From-Process') === A && tag(ptags, 'From-Module') === env.AOS_MODULE, 'pushed tags', ptags);
const pres = await c.result({ message: pushed.node.message.id, process: B });
check(String(pres.Output?.data).includes(`ping from ${A}`), 'B saw From = A', pres);
check((await page(A)).edges.length === aSlots + 1, "A's schedule holds only the Eval");
step(8);

// 9. a process spawns a process: the child is scheduled and A gets Spawned
await evalIn(A, 'Spawn(ao.env.Module.Id, { Data = "child", Tags = { Name = "e2e-child" } })');
const notice = await until('Spawned on A', async () => (await page(A)).edges.find(
  (e) => tag(e.node.message.tags, 'Action') === 'Spawned'));
const child = tag(notice.node.message.tags, 'Process');
const childProc = (await get(`/processes/${child}`)).body;
check(tag(childProc.tags, 'From-Process') === A && tag(childProc.tags, 'Type') === 'Process', 'child process', childProc);
step(9);

// 10. assign a message of A to B (B made it assignable), without its Data
await evalIn(B, 'ao.addAssignable("all", function(m) return true end)');
const { id: mA } = await evalIn(A, 'return "to be assigned"');
const bNext = (await page(B)).edges.length;
const asg = await c.assign({ process: B, message: mA, exclude: ['Data'] });
check(typeof asg === 'string' && asg.length > 0, 'assignment id', asg);
const assigned = await until('the assignment on B', async () => (await page(B)).edges.find(
  (e) => tag(e.node.assignment.tags, 'Message') === mA));
check(tag(assigned.node.assignment.tags, 'Exclude') === 'Data' && tag(assigned.node.assignment.tags, 'Nonce') === String(bNext),
  'assignment node', assigned.node.assignment);
const ares = await c.result({ message: mA, process: B });
check(ares && 'Output' in ares, "B's result for the assigned message", ares);
step(10);

// 11. monitor: cron ticks come, and stop after unmonitor
const C = await spawn('e2e-cron', [{ name: 'Cron-Interval', value: '1-second' }, { name: 'Cron-Tag-Action', value: 'Cron' }]);
const mon = await c.monitor({ process: C, signer });
check(typeof mon === 'string' && mon.length === 43, 'monitor id', mon);
const crons = await until('cron results', async () => {
  const r = (await get(`/cron/${C}`)).body;
  return r.edges.length >= 2 ? r : null;
}, 8000);
check(crons.edges.length >= 2, 'cron ticks');
await c.unmonitor({ process: C, signer });
await sleep(1300);
const c1 = (await c.results({ process: C, limit: 1000 })).edges.length;
await sleep(2200);
check((await c.results({ process: C, limit: 1000 })).edges.length === c1, 'ticks stopped');
step(11);

// 12. the assignment slot, SU pages and timestamp
const slotted = await c.message({ process: A, signer, tags: [{ name: 'Action', value: 'Eval' }], data: 'return 12',
  returnAssignmentSlot: true, returnMessageId: true });
const sNode = (await get(`/${slotted.id}?process-id=${A}`)).body;
check(slotted.slot === tag(sNode.assignment.tags, 'Nonce'), 'slot', { slotted, tags: sNode.assignment.tags });
const msgs = await c.getMessages({ processId: A, from: '0', to: String(Date.now() + 60000), limit: '3' });
check(msgs.page_info && msgs.page_info.has_next_page === true && msgs.edges.length === 3
  && tag(msgs.edges[0].node.assignment.tags, 'Nonce') === '0' && msgs.edges[0].node.message.id === A, 'getMessages', msgs);
const lastSlot = await c.getLastSlot({ processId: A });
check(lastSlot === slotted.slot, 'getLastSlot', lastSlot);
const ts = (await get('/timestamp')).body;
check(typeof ts.timestamp === 'string' && /^\d{12}$/.test(ts.block_height), 'timestamp', ts);
step(12);

// 13. an errored Eval leaves no state change
await evalIn(A, 'Kept = "before"');
const { res: errRes } = await evalIn(A, 'Kept = "after"; error("rolled back")');
check(errRes.Error && String(errRes.Error).includes('rolled back'), 'Error result', errRes);
const { res: keptRes } = await evalIn(A, 'return Kept');
check(String(keptRes.Output.data).includes('before'), 'state rolled back', keptRes);
step(13);

summary.requests = requests;
summary.escapes = escapes;
summary.processes = { A, B, C, child };
console.log(JSON.stringify(summary));
