import type { CsvColumn } from './output.js';

/** The CSV columns, as the jobs API's text/csv results has them. */
export async function csvColumns(): Promise<readonly CsvColumn[]> {
  return [
    { header: 'ip', value: (r) => r.ip },
    { header: 'input', value: (r) => r.input },
    { header: 'status', value: (r) => r.status },
    { header: 'error', value: (r) => r.error },
    { header: 'asn', value: (r) => r.asn?.number },
    { header: 'as_name', value: (r) => r.asn?.name },
    { header: 'prefix', value: (r) => r.asn?.prefix },
    { header: 'country', value: (r) => r.geo?.country ?? r.asn?.country },
    { header: 'city', value: (r) => r.geo?.city },
    { header: 'latitude', value: (r) => r.geo?.latitude },
    { header: 'longitude', value: (r) => r.geo?.longitude },
    { header: 'greynoise_classification', value: (r) => r.greynoise?.classification },
    { header: 'greynoise_noise', value: (r) => r.greynoise?.noise },
    { header: 'greynoise_riot', value: (r) => r.greynoise?.riot },
    { header: 'dshield_attacks', value: (r) => r.dshield?.attacks },
    { header: 'dshield_reports', value: (r) => r.dshield?.reports },
    { header: 'dshield_threat_feeds', value: (r) => r.dshield?.threatFeeds.join(' ') },
    { header: 'maxmind_status', value: (r) => r.sources.maxmind.status },
    { header: 'cymru_status', value: (r) => r.sources.cymru.status },
    { header: 'greynoise_status', value: (r) => r.sources.greynoise.status },
    { header: 'dshield_status', value: (r) => r.sources.dshield.status },
    { header: 'updated_at', value: (r) => r.updatedAt },
  ];
}
