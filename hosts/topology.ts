/**
 * The hosts of a bed and what runs on each. `full` is issue 20's topology (`npm run hosts`): 2 LB hosts
 * behind a virtual address, 3 web hosts, 2 worker hosts, 3 store-Redis hosts (a primary, two replicas) each
 * with a Sentinel, a cache-Redis primary and replica, one PostgreSQL host. `small` is the fast variant of
 * `npm test`: 1 LB, 2 web hosts, 1 stores host (PostgreSQL, store and cache Redis, one Sentinel), no keepalived.
 */

export type Role = 'lb' | 'web' | 'worker' | 'postgres' | 'store' | 'cache' | 'sentinel'

export interface HostDef {
  /** Short (the namespace and link are `<prefix>-<name>`, 15 characters at most). */
  name: string
  /** Last octet of its address in the bed's /24. */
  octet: number
  roles: Role[]
}

export interface Topology {
  hosts: HostDef[]
  /** Last octet of the LBs' virtual address (keepalived), when there are two LBs. */
  vipOctet?: number
  /** The store Redis's port (6379) and the cache Redis's (6379 on hosts of its own, 6380 beside the store). */
  storePort: number
  cachePort: number
}

export const full: Topology = {
  hosts: [
    { name: 'lb1', octet: 11, roles: ['lb'] },
    { name: 'lb2', octet: 12, roles: ['lb'] },
    { name: 'web1', octet: 21, roles: ['web'] },
    { name: 'web2', octet: 22, roles: ['web'] },
    { name: 'web3', octet: 23, roles: ['web'] },
    { name: 'wrk1', octet: 31, roles: ['worker'] },
    { name: 'wrk2', octet: 32, roles: ['worker'] },
    { name: 'st1', octet: 41, roles: ['store', 'sentinel'] },
    { name: 'st2', octet: 42, roles: ['store', 'sentinel'] },
    { name: 'st3', octet: 43, roles: ['store', 'sentinel'] },
    { name: 'ca1', octet: 51, roles: ['cache'] },
    { name: 'ca2', octet: 52, roles: ['cache'] },
    { name: 'pg1', octet: 61, roles: ['postgres'] },
  ],
  vipOctet: 100,
  storePort: 6379,
  cachePort: 6379,
}

export const small: Topology = {
  hosts: [
    { name: 'lb1', octet: 11, roles: ['lb'] },
    { name: 'web1', octet: 21, roles: ['web'] },
    { name: 'web2', octet: 22, roles: ['web'] },
    { name: 'db1', octet: 41, roles: ['postgres', 'store', 'cache', 'sentinel'] },
  ],
  storePort: 6379,
  cachePort: 6380,
}

/** The hosts that run `role`, in order (the first store and cache hosts start as primaries). */
export const hostsWith = (t: Topology, role: Role): HostDef[] => t.hosts.filter((h) => h.roles.includes(role))
