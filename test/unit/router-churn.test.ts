// Developers come and go while traffic flows: a killed developer's requests
// go to origin at once while another developer's still route; ten mesh
// start/stop cycles under continuous untagged load fail no request.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bed, tag, whoAnswers } from './router-fixtures.ts';

test("kill one developer: their requests go to origin at once, the other's still route", async (t) => {
  const b = await bed(t);
  const alice = await b.dev('alice', { headers: tag('alice') });
  await b.dev('bob', { headers: tag('bob') });
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice');
  // As when the plugin is killed with -9: its socket closes, no SSH goodbye.
  const started = process.hrtime.bigint();
  alice.socket.destroy();
  let pod = 'alice';
  let tries = 0;
  while (pod === 'alice' && tries++ < 10_000) pod = await whoAnswers(b.port, { 'x-kt-version': 'alice' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(pod, 'origin-pod');
  process.stderr.write(`router mesh fallback: ${ms.toFixed(1)} ms from killing alice's SSH socket to her tagged request served by origin (${tries} requests)\n`);
  assert.ok(ms < 1000, `fallback took ${ms} ms`);
  assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'bob' }), 'bob');
});

test('ten mesh start/stop cycles under continuous untagged load: no failed request', async (t) => {
  const b = await bed(t);
  let stop = false;
  const counts = { untaggedOk: 0, untaggedFailed: 0, taggedAlice: 0, taggedOrigin: 0, taggedFailed: 0 };
  const errors: string[] = [];
  const loop = async (tagged: boolean) => {
    while (!stop) {
      try {
        const pod = await whoAnswers(b.port, tagged ? { 'x-kt-version': 'alice' } : {});
        if (!tagged) {
          if (pod === 'origin-pod') counts.untaggedOk++;
          else {
            counts.untaggedFailed++;
            errors.push(`untagged answered by ${pod}`);
          }
        } else if (pod === 'alice') counts.taggedAlice++;
        else counts.taggedOrigin++;
      } catch (err) {
        if (tagged) counts.taggedFailed++;
        else counts.untaggedFailed++;
        errors.push(`${tagged ? 'tagged' : 'untagged'}: ${(err as Error).message}`);
      }
    }
  };
  const loops = [...Array.from({ length: 6 }, () => loop(false)), loop(true), loop(true)];
  for (let i = 0; i < 10; i++) {
    const dev = await b.dev('alice', { headers: tag('alice') });
    assert.equal(await whoAnswers(b.port, { 'x-kt-version': 'alice' }), 'alice', `cycle ${i}`);
    if (i % 2) await dev.tunnel.close();
    else dev.socket.destroy();
    // The next cycle registers the same rule: wait until the router has let
    // the old one go (its connection close is seen), bounded.
    for (let j = 0; j < 1000 && b.router.routes().length > 0; j++) await whoAnswers(b.port);
  }
  stop = true;
  await Promise.all(loops);
  process.stderr.write(`router mesh churn: 10 cycles, ${JSON.stringify(counts)}${errors.length ? `, first errors: ${errors.slice(0, 3).join('; ')}` : ''}\n`);
  assert.equal(counts.untaggedFailed, 0, errors.join('\n'));
  assert.ok(counts.untaggedOk > 100);
  assert.ok(counts.taggedAlice > 0 && counts.taggedOrigin > 0);
});
