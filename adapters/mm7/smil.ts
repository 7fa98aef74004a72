// The SMIL presentation every SubmitReq carries (Sinch requires one; handsets lay slides out by it).
// Layout: one slide per media item, the message text on the first slide under its media; with no media,
// a single text slide. Parts are referenced by cid: (each part also has a matching Content-Location).
import { escapeXml } from "./xml.ts";

export interface SlideItem {
  cid: string;
  contentType: string;
}

export interface Slide {
  media?: SlideItem;
  text?: SlideItem;
}

/** Slide duration: long enough to read a short text; handsets let the user page on anyway. */
const slideMs = 5000;

function smilElement(contentType: string): "img" | "video" | "audio" | "text" | "ref" {
  const type = contentType.toLowerCase();
  if (type.startsWith("image/")) return "img";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("text/")) return "text";
  return "ref";
}

export function slidesFor(media: SlideItem[], text: SlideItem | undefined): Slide[] {
  if (media.length === 0) return text ? [{ text }] : [];
  return media.map((m, i) => (i === 0 && text ? { media: m, text } : { media: m }));
}

export function buildSmil(slides: Slide[]): string {
  const hasVisual = slides.some((s) => s.media && ["img", "video", "ref"].includes(smilElement(s.media.contentType)));
  const hasText = slides.some((s) => s.text || (s.media && smilElement(s.media.contentType) === "text"));
  let regions = "";
  if (hasVisual) regions += `<region id="Image" top="0" left="0" width="100%" height="${hasText ? "70%" : "100%"}" fit="meet"/>`;
  if (hasText) regions += `<region id="Text" top="${hasVisual ? "70%" : "0"}" left="0" width="100%" height="${hasVisual ? "30%" : "100%"}" fit="scroll"/>`;
  let body = "";
  for (const slide of slides) {
    body += `<par dur="${slideMs}ms">`;
    if (slide.media) body += item(slide.media);
    if (slide.text) body += item(slide.text);
    body += "</par>";
  }
  return (
    `<smil><head><layout><root-layout width="100%" height="100%"/>${regions}</layout></head>` + `<body>${body}</body></smil>`
  );
}

function item(it: SlideItem): string {
  const tag = smilElement(it.contentType);
  const region = tag === "text" ? ` region="Text"` : tag === "audio" ? "" : ` region="Image"`;
  return `<${tag} src="cid:${escapeXml(it.cid)}"${region}/>`;
}
