import type { ClusterListener } from '../src/cluster/cluster-interfaces.js';
import type { ClusterNode } from '../src/cluster/cluster-protocol.js';

/** A cluster listener whose own nodes are `own()`, recording the nodes it learns of (`seen`) and the relays it loses (`gone`). */
export function clusterListener(own: () => ClusterNode[], seen: string[] = [], gone: string[] = []): ClusterListener {
  const none = () => undefined;
  return {
    localNodes: own,
    remoteNodeUp: n => void seen.push(n.nodeId),
    remoteNodeDown: none,
    remoteNodeChanged: none,
    relayGone: r => void gone.push(r.instanceId),
    remoteRequest: none,
    remoteResponse: none,
    remoteCancel: none,
    remoteCredit: none,
    remoteError: none,
    remoteEvent: none,
    remoteEventCopies: none,
    remoteHandled: none,
  };
}

/** Resolves once `predicate` holds, checking after each turn of the event loop; fails after 5 s. */
export async function untilTrue(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}
