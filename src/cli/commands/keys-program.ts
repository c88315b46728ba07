import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseLimit, parseScopes, SCOPES } from '../../auth/tokens.js';
import { errorMessage } from '../../errors/message.js';
import { exitWith } from '../exit.js';

const parsed = <T>(parse: (value: string) => T) => (value: string) => {
  try {
    return parse(value);
  } catch (error) {
    throw new InvalidArgumentError(errorMessage(error));
  }
};

/** `ip-enrich keys create|list|revoke`: the API keys on the configured database (AUTH=keys). */
export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('API keys (AUTH=keys) on DATABASE_URL, or the embedded database in DATA_DIR: create, list, revoke');
  keys
    .command('create')
    .description('create a key and print it (the only time it is shown); its details go to standard error')
    .requiredOption('--name <name>', 'who or what the key is for, shown in keys list and the logs')
    .addOption(new Option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`).argParser(parsed(parseScopes)).makeOptionMandatory())
    .addOption(new Option('--rate <n/min>', 'requests per minute (default: no limit)').argParser(parsed((value) => parseLimit(value, 'min'))))
    .addOption(
      new Option('--addresses <n/day>', 'addresses per UTC day for POST /enrich and jobs (default: no limit)').argParser(
        parsed((value) => parseLimit(value, 'day')),
      ),
    )
    .action(async (options) => {
      const { keysCreate } = await import('./keys.js');
      return exitWith(await keysCreate(options as Parameters<typeof keysCreate>[0]));
    });
  keys
    .command('list')
    .description('every key with its prefix, name, scopes, limits, creation, last use and revocation')
    .option('--json', 'as JSON', false)
    .action(async (options: { json: boolean }) => {
      const { keysList } = await import('./keys.js');
      return exitWith(await keysList(options));
    });
  keys
    .command('revoke')
    .description('revoke keys by prefix (ipe_…), id or name; every replica refuses them within seconds')
    .argument('<key>', 'the prefix, id or name')
    .action(async (which: string) => {
      const { keysRevoke } = await import('./keys.js');
      return exitWith(await keysRevoke(which));
    });
}
