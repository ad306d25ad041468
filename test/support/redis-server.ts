/** The arguments of a test's own redis-server: loopback, its own folder, nothing on disk, a replica when asked. */
export function testRedisArgs(port: number, dir: string, replicaOf?: number): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
  ]
}
