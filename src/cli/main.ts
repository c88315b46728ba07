#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorMessage } from '../errors/message.js';
import { INPUT_FORMATS, InputError } from '../input/extract.js';
import { SOURCE_NAMES, type SourceName } from '../record/model.js';
import { VERSION } from '../version.js';
import { CliError, EXIT, exitWith } from './exit.js';
import { registerKeyCommands } from './commands/keys-program.js';
import { OUTPUT_FORMATS } from './output.js';

const EXIT_STATUSES = `
Exit status:
  0    done
  1    the job failed or was cancelled elsewhere, or another failure
  2    usage or input error (the message names the problem)
  3    done, but some records ended with a source in error
  4    the service could not be reached, or refused (its problem+json detail is printed)
  130  interrupted (Ctrl-C); a job on a server keeps running`;

function sourceList(value: string): SourceName[] {
  const names = value.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(SOURCE_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(`expected a comma-separated list of ${SOURCE_NAMES.join(', ')}`);
  }
  return [...new Set(names)] as SourceName[];
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

const serverOption = () =>
  new Option('--server <url>', 'the service to use, e.g. http://127.0.0.1:8080').env('IPENRICH_URL');
const quietOption = () => new Option('-q, --quiet', 'no progress and no summary on standard error (errors still are)').default(false);
const everyOption = () =>
  new Option('--progress-every <seconds>', 'when standard error is not a terminal: seconds between progress lines')
    .argParser(seconds)
    .default(5);
const formatOption = () =>
  new Option('--format <format>', 'csv, ndjson, json, or table (a terminal only); default: from -o FILE, else table on a terminal, csv elsewhere').choices(
    OUTPUT_FORMATS,
  );
const outputOption = () => new Option('-o, --output <file>', 'write the results to FILE instead of standard output');

export function buildProgram(): Command {
  const program = new Command('ip-enrich')
    .description('Enrich IP addresses with MaxMind, Team Cymru, GreyNoise and DShield; run the ip-enrich service')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_STATUSES)
    .exitOverride();

  program
    .command('enrich')
    .description(
      'enrich the addresses in FILEs (standard input when none, or -): a list, CSV, NDJSON (e.g. cowrie) or JSON; one record per distinct address',
    )
    .argument('[file...]', 'inputs to read; .gz files are read as they are')
    .addOption(new Option('--input <format>', 'the input format (default: detected per file)').choices(INPUT_FORMATS))
    .option('--column <name>', 'CSV: the column holding the addresses, by header name or 1-based number (default: the first that holds addresses)')
    .option('--field <path>', 'NDJSON/JSON: the dotted path of the address, e.g. src_ip for cowrie (default: src_ip, ip, … or the first field that holds one)')
    .addOption(serverOption())
    .addOption(formatOption())
    .addOption(outputOption())
    .addOption(new Option('--sources <list>', `only these sources, comma-separated: ${SOURCE_NAMES.join(',')}`).argParser(sourceList))
    .option('--refresh', 'fetch again what is stored and still fresh', false)
    .option('--label <text>', 'a name for the job (default: the file names)')
    .addOption(quietOption())
    .addOption(everyOption())
    .addHelpText(
      'after',
      '\nWithout --server (or IPENRICH_URL) the engine runs in this process, configured by the service\'s variables\n' +
        '(DATABASE_URL, REDIS_URL, MAXMIND_*, GREYNOISE_*, DSHIELD_*; the embedded database in DATA_DIR by default).' +
        EXIT_STATUSES,
    )
    .action(async (files: string[], options) => {
      const { enrich } = await import('./commands/enrich.js');
      return exitWith(await enrich(files, options as Parameters<typeof enrich>[1]));
    });

  program
    .command('extract')
    .description('print the distinct addresses found in FILEs, one per line (the reading step of enrich, on its own)')
    .argument('[file...]', 'inputs to read')
    .addOption(new Option('--input <format>', 'the input format (default: detected per file)').choices(INPUT_FORMATS))
    .option('--column <name>', 'CSV: the column holding the addresses')
    .option('--field <path>', 'NDJSON/JSON: the dotted path of the address')
    .addOption(outputOption())
    .addOption(quietOption())
    .addOption(everyOption())
    .action(async (files: string[], options) => {
      const { extract } = await import('./commands/extract.js');
      return exitWith(await extract(files, options as Parameters<typeof extract>[1]));
    });

  const job = program.command('job').description('jobs on a server: status, results, cancel');
  job
    .command('status')
    .description('the job as JSON; with --follow, its progress until it ends')
    .argument('<id>', 'the job id')
    .addOption(serverOption())
    .option('-f, --follow', 'show progress until the job ends', false)
    .addOption(quietOption())
    .addOption(everyOption())
    .action(async (id: string, options) => {
      const { jobStatus } = await import('./commands/jobs.js');
      return exitWith(await jobStatus(id, options as Parameters<typeof jobStatus>[1]));
    });
  job
    .command('results')
    .description('the results of a job (those not finished yet are "pending"); with --wait, once it ends')
    .argument('<id>', 'the job id')
    .addOption(serverOption())
    .addOption(formatOption())
    .addOption(outputOption())
    .option('-w, --wait', 'follow the job until it ends, then write its results', false)
    .addOption(quietOption())
    .addOption(everyOption())
    .action(async (id: string, options) => {
      const { jobResults } = await import('./commands/jobs.js');
      return exitWith(await jobResults(id, options as Parameters<typeof jobResults>[1]));
    });
  job
    .command('cancel')
    .description('cancel a queued or running job; what it finished stays')
    .argument('<id>', 'the job id')
    .addOption(serverOption())
    .action(async (id: string, options) => {
      const { jobCancel } = await import('./commands/jobs.js');
      return exitWith(await jobCancel(id, { ...(options as { server?: string }), quiet: true, progressEvery: 5 }));
    });

  const serveOptions = (command: Command) =>
    command.option('--host <address>', 'listen address (sets HOST)').option('--port <port>', 'listen port (sets PORT)');
  serveOptions(
    program
      .command('serve')
      .description('start the service: API, worker and scheduler (ROLE=all), or only the API with --api-only (ROLE=api)')
      .option('--api-only', 'serve the API without running jobs (ROLE=api)', false),
  ).action(async (options: { host?: string; port?: string; apiOnly: boolean }) => {
    const { serve } = await import('./commands/service.js');
    await serve(options.apiOnly ? 'api' : 'all', options);
  });
  serveOptions(program.command('worker').description('start a worker: runs jobs, serves /healthz, /readyz and /metrics (ROLE=worker)')).action(
    async (options: { host?: string; port?: string }) => {
      const { serve } = await import('./commands/service.js');
      await serve('worker', options);
    },
  );
  program
    .command('migrate')
    .description('apply the database migrations and create the job queues (DATABASE_URL, or the embedded database in DATA_DIR) and exit')
    .action(async () => {
      const { migrate } = await import('./commands/service.js');
      return exitWith(await migrate());
    });
  registerKeyCommands(program);
  return program;
}

function fail(message: string, status: number): Promise<never> {
  process.stderr.write(`ip-enrich: ${message}\n`);
  return exitWith(status);
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has printed the message (or the help, or the version) already.
    await exitWith(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  if (error instanceof InputError) await fail(error.message, EXIT.usage);
  if (error instanceof CliError) await fail(error.message, error.status);
  await fail(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : errorMessage(error)}`, EXIT.failed);
}
